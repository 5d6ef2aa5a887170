"""What every command's command line shares: the error a bad argument raises, a parser that reports
one in a single line, and the checks of the flags' values. Any module may import it: it imports
nothing of the project's."""
import argparse
import difflib
from pathlib import Path


class UsageError(Exception):
    """Bad input: reported as one line, exit code 2."""


def no_such_command(name, commands):
    """The UsageError for a first word that names no command, with the nearest one."""
    nearest = difflib.get_close_matches(name, commands, n=1)
    return UsageError(f"no command {name!r}" + (f"; did you mean {nearest[0]}?" if nearest else
                                                f": the commands are {', '.join(commands)}"))


def set_bounds(module, assignments):
    """A research script's `--set NAME=VALUE`s: another value for some of `module`'s bounds (its upper-case
    constants), each of its bound's own type (a tuple's as numbers with commas). UsageError for a name
    the module has no bound of, or a value that is not one."""
    for assignment in assignments:
        name, _, value = assignment.partition("=")
        bound = getattr(module, name, None) if name.isupper() else None
        if bound is None:
            raise UsageError(f"--set {assignment}: {Path(module.__file__).name} has no bound {name}")
        try:
            value = tuple(map(float, value.split(","))) if isinstance(bound, tuple) else type(bound)(value)
        except ValueError:
            raise UsageError(f"--set {assignment}: not a value of {name}, which is {bound!r}") from None
        setattr(module, name, value)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument gets one line, not the usage block; no abbreviated flags."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message):
        if message.startswith("unrecognized arguments: "):  # a typo: name the nearest flag
            unknown = message.split(": ", 1)[1].split()[0].split("=")[0]
            flags = [flag for parser in [self, *getattr(self, "commands", {}).values()]  # any command's
                     for flag in parser._option_string_actions]
            nearest = difflib.get_close_matches(unknown, flags, n=1)
            message += f"; did you mean {nearest[0]}?" if nearest else ""
        raise UsageError(f"{message} (see {self.prog} --help)")


def number(kind, low, below=None, positive=False):
    """An argparse type: a `kind` of at least `low` (above it if `positive`), below `below` if given."""
    def parse(text):
        value = kind(text)
        if value < low or (positive and value == low) or (below is not None and value >= below):
            span = f"{'above' if positive else 'at least'} {low}" + (f" and below {below}" if below else "")
            raise argparse.ArgumentTypeError(f"must be {span}, not {text}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in "invalid int value"
    return parse


def channel_list(text):
    """--channels: five positive integers, comma-separated."""
    channels = [int(part) for part in text.split(",") if part.strip().isdigit()]
    if len(channels) != 5 or len(text.split(",")) != 5 or min(channels) <= 0:
        raise argparse.ArgumentTypeError(f"must be five positive integers separated by commas, not {text}")
    return channels


def thread_count(text):
    """--threads of a training run: 'auto' or a count."""
    return text if text == "auto" else number(int, 1)(text)
