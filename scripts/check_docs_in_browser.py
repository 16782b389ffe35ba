"""Manual check: the API's /docs renders in headless Chromium and a prediction runs from it.

    apt-get install -y chromium
    .venv/bin/python scripts/check_docs_in_browser.py [--out /tmp]

Starts private Redis and MLflow, publishes a real tfd live model (bench/serving.py's setup),
runs `coelho serve`, opens /docs in headless Chromium (driven over the DevTools protocol),
clicks "Try it out" and "Execute" on POST /api/v1/incremental/tfd/predict with the example
request, prints the answer and saves docs.png and predict.png.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import httpx  # noqa: E402
import serving as bench  # noqa: E402  (bench/serving.py)
import websocket  # noqa: E402

from coelho.platform import free_port  # noqa: E402
from coelho_pipelines.use_cases import get_spec  # noqa: E402

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--window-size=1280,1600"]  # fmt: skip
OPERATION = "/api/v1/incremental/tfd/predict"


class Page:
    """A Chromium tab over the DevTools protocol."""

    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                return message.get("result", message)

    def js(self, code: str) -> Any:
        result = self.call("Runtime.evaluate", expression=code, returnByValue=True)
        return result.get("result", {}).get("value")

    def wait_for(self, code: str, seconds: float = 20.0) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = self.js(code)
            if value:
                return value
            time.sleep(0.2)
        raise TimeoutError(code)

    def screenshot(self, path: Path) -> None:
        shot = self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))


def in_block(block: str, expression: str) -> str:
    return f"(() => {{ const b = document.getElementById('{block}'); {expression} }})()"


def check(page: Page, port: int, out: Path) -> None:
    page.call("Page.enable")
    page.call("Emulation.setDeviceMetricsOverride", width=1280, height=1600,
              deviceScaleFactor=1, mobile=False)  # fmt: skip
    page.call("Page.navigate", url=f"http://127.0.0.1:{port}/docs")
    operations = page.wait_for("document.querySelectorAll('.opblock').length")
    print(f"/docs rendered {operations} operations")
    page.screenshot(out / "docs.png")
    block = page.js(f"""(() => {{
        const b = [...document.querySelectorAll('.opblock')]
            .find(x => x.innerText.includes('{OPERATION}'));
        const open = b.querySelector('.opblock-summary-control');
        (open || b.querySelector('.opblock-summary')).click();
        return b.id; }})()""")
    page.wait_for(in_block(block, "const t = b.querySelector('.try-out__btn'); "
                                  "if (t) t.click(); return !!t;"))  # fmt: skip
    page.wait_for(in_block(block, "const e = b.querySelector('.execute'); "
                                  "if (e) e.click(); return !!e;"))  # fmt: skip
    status = page.wait_for(in_block(block, "const s = b.querySelector("
                                    "'.live-responses-table tbody .response-col_status'); "
                                    "return s && s.innerText;"))  # fmt: skip
    body = page.js(in_block(block, "const p = b.querySelector("
                                   "'.live-responses-table .response-col_description pre'); "
                                   "return p && p.innerText;"))  # fmt: skip
    print(f"POST {OPERATION} from /docs: {status}\n{body}")
    page.js(in_block(block, "b.querySelector('.live-responses-table').scrollIntoView();"))
    time.sleep(0.3)
    page.screenshot(out / "predict.png")
    print(f"screenshots: {out / 'docs.png'}, {out / 'predict.png'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, bench.services(Path(tmp)) as env:
        os.environ.update(env)
        spec = get_spec("tfd")
        bench.learn_and_publish(spec, bench.generate(spec, 800), env)
        port = free_port()
        with bench.server(env, port):
            debug_port = free_port()
            chrome = subprocess.Popen(
                [
                    "chromium",
                    *CHROMIUM_FLAGS,
                    f"--remote-debugging-port={debug_port}",
                    f"--user-data-dir={tmp}/chromium",
                    "about:blank",
                ],  # fmt: skip
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                for _ in range(100):
                    try:
                        targets = httpx.get(f"http://127.0.0.1:{debug_port}/json").json()
                        break
                    except httpx.HTTPError:
                        time.sleep(0.2)
                else:
                    raise RuntimeError("Chromium did not open its DevTools port")
                tab = next(t for t in targets if t["type"] == "page")
                check(Page(tab["webSocketDebuggerUrl"]), port, args.out)
            finally:
                chrome.terminate()
                chrome.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
