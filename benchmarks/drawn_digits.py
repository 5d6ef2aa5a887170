"""How many mouse-drawn digits the draw page reads right, in a real browser (Chromium, via Playwright).

    python benchmarks/drawn_digits.py --out benchmarks/results/drawn_digits.md   # this checkout's `serve`
    python benchmarks/drawn_digits.py --commit 437f291    # the program as it was at an earlier commit

Draws, with the mouse, the strokes of the page's own browser test (digit_pictures.py, as
tests/test_serve.py does): 20 eights (one continuous figure-eight and two stacked loops, heights
from half the box to nearly all of it, upright and leaning 15 degrees), 50 digits (each of 0-9 as
drawn, large and leaning, small, small in a corner, leaning off-centre) and, in the number mode, 10
four-digit numbers, and counts what the page shows. It starts
`python mnist_99_4.py serve --port 0` of this checkout, or of --commit's program taken from git
history, and stops it after. Needs Chromium (Debian: apt-get install chromium) and Playwright for
Python.
"""
import argparse
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from digit_pictures import EIGHTS, MOUSE_DIGITS, MOUSE_NUMBERS, VARIANTS, draw, system_browser, transformed, \
    written_numbers  # noqa: E402
from seeds import program_at  # noqa: E402  (this folder is on the path as a script)


def read_all(address):
    """(eights read as 8, digits read right, four-digit numbers read right) on the page at `address`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=system_browser(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 900, "height": 620})
        page.goto(address)

        def shown(strokes):
            page.keyboard.press("Escape")
            draw(page, strokes)
            return page.locator("#digit").inner_text()

        eights = sum(shown(transformed(strokes, scale, slant)) == "8" for _, strokes, scale, slant in EIGHTS)
        digits = sum(shown(transformed(MOUSE_DIGITS[digit], **variant)) == str(digit)
                     for digit in range(10) for variant in VARIANTS)
        numbers = None  # a page from before the number mode has none
        if page.locator("#number-mode").count():
            page.check("#number-mode")  # the wide canvas
            numbers = sum(shown(strokes) == number for number, strokes in written_numbers())
        browser.close()
    return eights, digits, numbers


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commit", metavar="REV", help="serve the program of this commit (default: this checkout)")
    parser.add_argument("--out", metavar="MD", help="also write the counts here (benchmarks/results/drawn_digits.md)")
    args = parser.parse_args()
    if not system_browser():
        sys.exit("error: no Chromium found (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as scratch:
        program_dir = program_at(args.commit, Path(scratch) / "program") if args.commit else ROOT
        server = subprocess.Popen([sys.executable, "mnist_99_4.py", "serve", "--port", "0"], cwd=program_dir,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            address = server.stdout.readline().split("Open ")[1].split()[0]
            eights, digits, numbers = read_all(address)
        finally:
            server.terminate()
            server.wait(timeout=30)
    line = (f"{args.commit or 'this checkout'}: {eights} of {len(EIGHTS)} eights read as 8, "
            f"{digits} of {10 * len(VARIANTS)} digits read right" + (
                "" if numbers is None else f", {numbers} of {len(MOUSE_NUMBERS)} four-digit numbers read right"))
    if args.out:
        import data
        import runs

        command = shlex.join(["python", "benchmarks/drawn_digits.py", *sys.argv[1:]])
        data.write_atomically(args.out, f"`{command}` (commit {runs.git_commit()})\n\n{line}\n".encode())
    print(line + (f"; wrote {args.out}" if args.out else ""))


if __name__ == "__main__":
    main()
