"""Open an inspection report in headless Chromium: check that every image loads, the console is clean and nothing
is wider than the window; save a screenshot (ncp_control/inspect/report_check.py).

    python scripts/check_report.py runs/demo/inspect/report.html --screenshot runs/demo/inspect/report.png

Exit status 0 when the report renders cleanly, 1 with one line per problem otherwise.
"""

import argparse
import sys

from ncp_control.inspect.report_check import check_report, screenshot

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="path to report.html")
    parser.add_argument("--screenshot", help="also save a PNG of the page here")
    parser.add_argument("--width", type=int, default=1400, help="window width in CSS pixels (default 1400)")
    args = parser.parse_args()
    result = check_report(args.report, width=args.width)
    print(f"{len(result.images)} images, page {result.page_width} px in a {result.window_width} px window")
    if args.screenshot:
        print(f"screenshot: {screenshot(args.report, args.screenshot, width=args.width)}")
    for problem in result.problems:
        print(problem)
    sys.exit(1 if result.problems else 0)
