"""Check a built HTML book as a reader sees it: every page loaded in headless Chromium, offline.

Chromium (Debian's ``chromium`` package) is driven through the DevTools
protocol over a pipe (``--remote-debugging-pipe``: commands on its fd 3,
answers on fd 4, each a JSON text ended by a NUL byte), so nothing listens on
a port, and with ``--host-resolver-rules`` no host name resolves: a page that
needs the network fails the check instead of fetching.

For each page, :func:`check_book` reports as problems:

- raw TeX in the visible text (``\\(``, ``\\[``, ``$$``, ``\\frac``, a ``$...$`` with a
  TeX command or sub/superscript), and fewer typeset formulas (``mjx-container``)
  than math nodes that Sphinx emitted (``.math``);
- an ``<img>`` that did not load (``naturalWidth == 0``);
- a glue reference that pasted nothing, or a cross-reference left unresolved;
- a console error, an uncaught exception or a failed resource load;
- an internal link to a missing page or anchor.

It saves a full-page screenshot of each page when asked.  Command line:
``python -m t2fsnn.book.browser _build/html [--screenshots _build/screenshots]``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set
from urllib.parse import unquote, urlsplit

INSTALL_COMMAND = "apt-get install -y chromium"
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> Optional[str]:
    """Path of a Chromium executable (``$T2FSNN_CHROMIUM``, else on ``PATH``), or None."""
    env = os.environ.get("T2FSNN_CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else shutil.which(env)
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class BrowserError(RuntimeError):
    """Chromium could not be started or stopped answering."""


class Chromium:
    """A headless Chromium with one tab, driven over the DevTools pipe. Use as a context manager."""

    def __init__(self, executable: Optional[str] = None, width: int = 1280, height: int = 900,
                 timeout: float = 60.0):
        self.executable = executable or find_chromium()
        if not self.executable:
            raise BrowserError(f"Chromium not found; install it with: {INSTALL_COMMAND}")
        self.width, self.height, self.timeout = width, height, timeout
        self._id = 0
        self._buffer = b""
        self.events: List[dict] = []
        self.proc: Optional[subprocess.Popen] = None
        self.session: Optional[str] = None

    # -- process and pipe -------------------------------------------------

    def __enter__(self) -> "Chromium":
        self._profile = tempfile.mkdtemp(prefix="t2fsnn-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        args = [
            self.executable,
            "--headless=new",
            "--remote-debugging-pipe",
            f"--user-data-dir={self._profile}",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-gpu", "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-features=Translate,MediaRouter,OptimizationHints",
            # no network: no host name resolves, and any connection goes to a closed local port
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
            f"--window-size={self.width},{self.height}",
            "about:blank",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox

        def wire_pipe():  # in the child: the pipe ends become fds 3 (commands) and 4 (answers)
            r, w = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(r, 3)
            os.dup2(w, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        # close_fds=False keeps fds 3 and 4; every other descriptor Python opened is close-on-exec
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=wire_pipe, close_fds=False)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        try:
            target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
            self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                     session=False)["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable")
            self.call("Emulation.setDeviceMetricsOverride",
                      {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            try:
                self._send({"id": self._next_id(), "method": "Browser.close"})
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        for fd in (getattr(self, "_to_chrome", None), getattr(self, "_from_chrome", None)):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._to_chrome = self._from_chrome = None
        shutil.rmtree(getattr(self, "_profile", ""), ignore_errors=True)

    def _next_id(self) -> int:
        self._id += 1
        return self._id

    def _send(self, message: dict) -> None:
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")

    def _receive(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise BrowserError("Chromium closed the DevTools pipe (it may have crashed)")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: Optional[dict] = None, session: bool = True,
             timeout: Optional[float] = None) -> dict:
        """Send one DevTools command and return its result; events that arrive meanwhile are kept."""
        ident = self._next_id()
        message = {"id": ident, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        self._send(message)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            answer = self._receive(deadline)
            if answer.get("id") == ident:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error'].get('message')}")
                return answer.get("result", {})
            if "method" in answer:
                self.events.append(answer)

    def wait_event(self, method: str, timeout: Optional[float] = None) -> dict:
        deadline = time.monotonic() + (timeout or self.timeout)
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            answer = self._receive(deadline)
            if answer.get("method") == method:
                return answer
            if "method" in answer:
                self.events.append(answer)

    # -- pages ------------------------------------------------------------

    def open(self, url: str, timeout: Optional[float] = None) -> None:
        """Load ``url`` and wait for its load event."""
        self.events.clear()
        result = self.call("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        self.wait_event("Page.loadEventFired", timeout)

    def evaluate(self, expression: str, timeout: Optional[float] = None):
        """Value of a JavaScript expression (promises awaited)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"script failed: {text}")
        return result.get("result", {}).get("value")

    def screenshot(self, path: os.PathLike, max_height: int = 20000) -> Path:
        """A PNG of the whole page (up to ``max_height`` CSS pixels tall)."""
        metrics = self.call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics.get("contentSize")
        height = min(max_height, max(self.height, int(size["height"])))
        # a viewport as tall as the page, so the capture is one plain frame of the laid-out page
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        try:
            self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            data = self.call("Page.captureScreenshot", {"format": "png"}, timeout=120)["data"]
        finally:
            self.call("Emulation.setDeviceMetricsOverride",
                      {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def errors(self) -> List[str]:
        """Console errors, uncaught exceptions and failed loads since the last :meth:`open`."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                found.append(f"console {params['type']}: {args}")
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                found.append(f"uncaught: {details.get('exception', {}).get('description') or details.get('text')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                found.append(f"{entry.get('source', 'log')} error: {entry.get('text')} {entry.get('url', '')}".strip())
        return found


# ---------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------

# Run in the page once it has loaded: waits for MathJax and the images, then reads the DOM.
_PAGE_SCRIPT = r"""
(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const mathNodes = document.querySelectorAll('.math').length;
  if (mathNodes) {
    for (let i = 0; i < 300 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++) await sleep(50);
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      await Promise.race([MathJax.startup.promise, sleep(30000)]);
    }
  }
  const images = [...document.images];
  await Promise.all(images.map(img => {
    img.loading = 'eager';
    if (img.complete) return null;
    return new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); setTimeout(r, 15000); });
  }));
  const skip = 'script, style, noscript, pre, code, textarea, mjx-container, .MathJax, svg, template';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode: n => (n.parentElement && n.parentElement.closest(skip)) ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
  });
  const parts = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (el && el.getClientRects().length === 0) continue;  // not rendered
    parts.push(n.nodeValue);
  }
  return {
    title: document.title,
    mathNodes: mathNodes,
    typeset: document.querySelectorAll('mjx-container').length,
    mathErrors: [...document.querySelectorAll('mjx-merror, .MathJax_Error, mjx-container [data-mjx-error]')]
      .map(e => e.getAttribute('data-mjx-error') || e.textContent).slice(0, 10),
    images: images.length,
    brokenImages: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
    // a reference Sphinx could not resolve is left without a link. Python-domain ones are
    // the nitpicky build's (-n): it fails on them, except the names of other packages that
    // _config.yml leaves unlinked on purpose (nitpick_ignore), so those are not counted here.
    unresolved: [...document.querySelectorAll('.xref, .pending_xref')]
      .filter(e => !e.closest('a') && !e.classList.contains('py'))
      .map(e => e.textContent.trim()).slice(0, 20),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    pasted: document.querySelectorAll('.pasted-text, .pasted-inline').length,
    text: parts.join(' '),
    fullText: document.body.innerText,
  };
})()
"""

_RAW_TEX = [
    (re.compile(r"\\\(|\\\)|\\\[|\\\]"), "raw TeX delimiters"),
    (re.compile(r"\$\$"), "raw $$"),
    (re.compile(r"\\(frac|text|mathrm|cdot|sum|tau|alpha|theta|begin|end)\b"), "raw TeX command"),
    (re.compile(r"(?<![\w$])\$[^$\s][^$\n]{0,300}?[\\_^][^$\n]{0,300}?\$"), "raw $...$ math"),
]
_UNPARSED_ROLE = re.compile(r"\{(glue|glue:text|glue:figure|glue:md|ref|numref|doc|eq|cite|math)\}`?")


@dataclasses.dataclass
class PageReport:
    page: str
    problems: List[str]
    math_nodes: int = 0
    typeset: int = 0
    images: int = 0
    screenshot: Optional[str] = None


def _ids(path: Path, cache: Dict[Path, Set[str]]) -> Set[str]:
    if path not in cache:
        text = path.read_text(errors="replace")
        cache[path] = set(re.findall(r"""\b(?:id|name)=["']([^"']+)["']""", text))
    return cache[path]


def _link_problems(links: Iterable[str], html_dir: Path, cache: Dict[Path, Set[str]]) -> List[str]:
    problems = []
    root = html_dir.resolve()
    for link in sorted(set(links)):
        parts = urlsplit(link)
        if parts.scheme != "file":
            continue  # external links are not followed (the check runs offline)
        target = Path(unquote(parts.path))
        try:
            target.resolve().relative_to(root)
        except ValueError:
            problems.append(f"link leaves the book: {link}")
            continue
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            problems.append(f"broken link: {target.relative_to(root) if target.is_relative_to(root) else target}")
            continue
        fragment = unquote(parts.fragment)
        if fragment and target.suffix == ".html" and fragment not in _ids(target, cache):
            problems.append(f"missing anchor: {target.relative_to(root)}#{fragment}")
    return problems


def _text_problems(text: str) -> List[str]:
    problems = []
    for pattern, what in _RAW_TEX:
        match = pattern.search(text)
        if match:
            start = max(0, match.start() - 40)
            problems.append(f"{what} in visible text: ...{text[start:match.end() + 40].strip()}...")
    match = _UNPARSED_ROLE.search(text)
    if match:
        start = max(0, match.start() - 30)
        problems.append(f"unresolved role in visible text: ...{text[start:match.end() + 60].strip()}...")
    return problems


_GLUE_ROLE = re.compile(r"\{glue(:text)?\}`")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")


def _without_code_blocks(markdown: str) -> str:
    """``markdown`` less its fenced code blocks (directive blocks such as ```` ```{glue} ```` are kept)."""
    kept, fence, code = [], None, False
    for line in markdown.splitlines():
        match = _FENCE.match(line)
        if fence is None and match:
            fence, code = match.group(1), not match.group(2).strip().startswith("{")
            if not code:
                kept.append(line)
            continue
        if fence is not None and match and match.group(1).startswith(fence) and not match.group(2).strip():
            if not code:
                kept.append(line)
            fence, code = None, False
            continue
        if not code:
            kept.append(line)
    return "\n".join(kept)


def _glue_problems(page: Path, html_dir: Path, pasted: int) -> List[str]:
    """Inline glue roles in the page's source (``_sources/``) that pasted nothing.

    myst-nb renders a glue key that the notebook did not glue as nothing at all,
    so the page is compared with its source: each ``{glue:text}`` / ``{glue}`` role
    should have left one ``.pasted-text`` / ``.pasted-inline`` element.
    """
    rel = page.relative_to(html_dir).with_suffix("")
    for suffix in (".md", ".md.txt"):
        source = html_dir / "_sources" / (str(rel) + suffix)
        if source.is_file():
            break
    else:
        return []
    text = _without_code_blocks(source.read_text(errors="replace"))
    roles = len(_GLUE_ROLE.findall(text))
    if roles > pasted:
        return [f"{roles - pasted} of {roles} glue references pasted nothing (a key the notebook did not glue)"]
    return []


def pages_of(html_dir: os.PathLike) -> List[Path]:
    """Every content page of a built book (not search, genindex, or sources)."""
    html_dir = Path(html_dir)
    skip = {"search.html", "genindex.html", "py-modindex.html"}
    pages = []
    for path in sorted(html_dir.rglob("*.html")):
        rel = path.relative_to(html_dir)
        if rel.parts[0] in ("_static", "_sources", "_images", "_downloads") or rel.name in skip:
            continue
        pages.append(path)
    return pages


_REFRESH = re.compile(r"""<meta\s+http-equiv=["']refresh["']\s+content=["']\d+;\s*url=([^"']+)["']""", re.I)


def check_page(browser: Chromium, page: Path, html_dir: Path, screenshots: Optional[Path] = None,
               ids_cache: Optional[Dict[Path, Set[str]]] = None, forbidden: Sequence[str] = ()) -> PageReport:
    """Load one page and list what a reader would see wrong with it.

    ``forbidden``: strings that must not appear anywhere in the page's text, code
    included (for example the path of the folder the book was built in).
    """
    rel = str(page.relative_to(html_dir))
    problems: List[str] = []
    redirect = _REFRESH.search(page.read_text(errors="replace"))
    if redirect:  # a redirect page (the book's root index.html): its target must exist
        target = (page.parent / unquote(redirect.group(1).split("#")[0])).resolve()
        return PageReport(rel, [] if target.is_file() else [f"redirect to a missing page: {redirect.group(1)}"])
    browser.open(page.resolve().as_uri())
    info = browser.evaluate(_PAGE_SCRIPT, timeout=90)
    time.sleep(0.2)  # late console messages (a font or image that failed after load)
    browser.call("Runtime.evaluate", {"expression": "0"})
    if info["typeset"] < info["mathNodes"]:
        problems.append(f"{info['mathNodes'] - info['typeset']} of {info['mathNodes']} formulas not typeset")
    elif info["typeset"] > info["mathNodes"]:
        problems.append(f"{info['typeset']} typeset formulas for {info['mathNodes']} math nodes: "
                        "MathJax typeset text that Sphinx did not mark as math")
    for error in info["mathErrors"]:
        problems.append(f"formula error: {error}")
    for src in info["brokenImages"]:
        problems.append(f"image not loaded: {src}")
    for ref in info["unresolved"]:
        problems.append(f"unresolved cross-reference: {ref}")
    problems += _text_problems(info["text"])
    problems += _glue_problems(page, html_dir, info["pasted"])
    for text in forbidden:
        at = info["fullText"].find(text)
        if text and at >= 0:
            problems.append(f"{text!r} in the page: ...{info['fullText'][max(0, at - 60):at + len(text) + 40]}...")
    problems += browser.errors()
    problems += _link_problems(info["links"], html_dir, ids_cache if ids_cache is not None else {})
    report = PageReport(rel, problems, info["mathNodes"], info["typeset"], info["images"])
    if screenshots is not None:
        shot = Path(screenshots) / (rel.replace(os.sep, "__").removesuffix(".html") + ".png")
        report.screenshot = str(browser.screenshot(shot))
    return report


def check_book(html_dir: os.PathLike, screenshots: Optional[os.PathLike] = None,
               pages: Optional[Iterable[os.PathLike]] = None, forbidden: Sequence[str] = ()) -> List[PageReport]:
    """Check every page of the built book in ``html_dir`` (see the module docstring and :func:`check_page`)."""
    html_dir = Path(html_dir).resolve()
    chosen = [Path(p).resolve() for p in pages] if pages is not None else pages_of(html_dir)
    if not chosen:
        raise FileNotFoundError(f"no HTML pages under {html_dir}")
    cache: Dict[Path, Set[str]] = {}
    with Chromium() as browser:
        return [check_page(browser, page, html_dir, Path(screenshots) if screenshots else None, cache, forbidden)
                for page in chosen]


def format_reports(reports: Iterable[PageReport]) -> str:
    lines = []
    for r in reports:
        status = "ok" if not r.problems else f"{len(r.problems)} problem(s)"
        lines.append(f"{r.page}: {status} ({r.typeset}/{r.math_nodes} formulas typeset)")
        lines += [f"    {p}" for p in r.problems]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m t2fsnn.book.browser", description=__doc__.splitlines()[0])
    ap.add_argument("html_dir", nargs="?", default="_build/html")
    ap.add_argument("--screenshots", default=None, help="folder for a full-page PNG of each page")
    args = ap.parse_args(argv)
    reports = check_book(args.html_dir, args.screenshots)
    print(format_reports(reports))
    return 1 if any(r.problems for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
