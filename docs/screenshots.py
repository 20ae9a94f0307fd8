"""Regenerate the README's screenshots (docs/img/map_*.png) from the maps `make demo` published.

    make demo && .venv/bin/python docs/screenshots.py [--maps build/maps/latest]

Debian's headless Chromium (/usr/bin/chromium, as in tests/test_browser.py) through Playwright; map
tiles are fetched when the network allows, else the maps show on their plain background.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

IMG = Path(__file__).resolve().parent / "img"
# (file, page, width, height, device scale, language)
SHOTS = (
    ("map_okurayama_phone.png", "okurayama.html", 390, 844, 2, "ja"),
    ("map_okurayama.png", "okurayama.html", 1024, 768, 1, "ja"),
    ("map_okurayama_en.png", "okurayama.html", 1280, 900, 1, "en"),
    ("map_nakayama.png", "nakayama.html", 1280, 900, 1, "ja"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", default="build/maps/latest", type=Path, help="the published maps")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"])
        for name, page_name, width, height, scale, lang in SHOTS:
            phone = width < 600
            context = browser.new_context(
                viewport={"width": width, "height": height},
                device_scale_factor=scale,
                is_mobile=phone,
                has_touch=phone,
                locale="ja-JP",
            )
            page = context.new_page()
            page.goto((args.maps / page_name).resolve().as_uri())
            page.wait_for_function("window.e2c !== undefined")
            if lang == "en":
                page.locator("#e2c-lang-toggle").click()
            page.wait_for_timeout(1500)  # tiles, when they come
            page.screenshot(path=str(IMG / name))
            context.close()
            print(IMG / name)
        browser.close()


if __name__ == "__main__":
    main()
