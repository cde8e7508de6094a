//! A minimal Chrome DevTools Protocol client for tests: starts a headless chromium with a
//! fresh profile, connects to its browser websocket and sends commands to the browser or to
//! a page session, keeping the events that arrive meanwhile. Every wait has a deadline, so a
//! broken flow fails instead of hanging.
//!
//! The websocket client is the few lines of RFC 6455 a local DevTools connection needs (text
//! frames, fragments, ping). Measured alternatives: the `headless_chrome` crate (1.0.22) took
//! 261 s of CPU and 2.6 GB of memory to build from scratch; `tungstenite` (0.30) only 16 s,
//! but as a dev-dependency it turns on features of `rand`, `bytes` and `data-encoding` that
//! burn uses, so `cargo test` and `cargo build` would each need their own build of burn.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

/// How long any single wait may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The chromium to use: `$CHROMIUM`, else the first of the usual names on `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
    .find(|p| p.is_file())
}

/// A running headless browser.
pub struct Browser {
    child: Child,
    ws: WebSocket,
    next_id: u64,
    /// Events received and not yet taken.
    pub events: VecDeque<Value>,
    profile: tempfile::TempDir,
}

impl Browser {
    /// Starts `exe` headless with a fresh profile and connects to it.
    pub fn launch(exe: &Path) -> Result<Self, String> {
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let log = std::fs::File::create(profile.path().join("chromium.log"))
            .map_err(|e| e.to_string())?;
        let child = Command::new(exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let mut pending = PendingBrowser { child: Some(child) };
        let url = pending.devtools_url(profile.path())?;
        let ws = WebSocket::connect(&url).map_err(|e| format!("connecting to {url}: {e}"))?;
        let Some(child) = pending.child.take() else {
            return Err("the browser process went missing".into());
        };
        Ok(Self {
            child,
            ws,
            next_id: 0,
            events: VecDeque::new(),
            profile,
        })
    }

    /// chromium's own log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.profile.path().join("chromium.log")).unwrap_or_default()
    }

    fn read(&mut self, deadline: Instant) -> Result<Value, String> {
        let text = self.ws.read_text(deadline)?;
        serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))
    }

    /// Sends `method` (to a page `session`, or to the browser) and returns its result.
    pub fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send_text(&msg.to_string())
            .map_err(|e| format!("{method}: {e}"))?;
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let m = self.read(deadline).map_err(|e| format!("{method}: {e}"))?;
            if m["id"] == json!(id) {
                if let Some(err) = m.get("error") {
                    return Err(format!("{method}: {err}"));
                }
                return Ok(m["result"].clone());
            }
            if m.get("method").is_some() {
                self.events.push_back(m);
            }
        }
    }

    /// Takes the first event named `method` (already received, or arriving before the
    /// deadline).
    pub fn wait_event(
        &mut self,
        method: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        if let Some(i) = self
            .events
            .iter()
            .position(|e| e["method"] == method && pred(e))
        {
            return Ok(self.events.remove(i).unwrap_or_default());
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let m = self
                .read(deadline)
                .map_err(|e| format!("waiting for {method}: {e}"))?;
            if m["method"] == method && pred(&m) {
                return Ok(m);
            }
            if m.get("method").is_some() {
                self.events.push_back(m);
            }
        }
    }

    /// Opens a page on `about:blank` and returns its session id.
    pub fn new_page(&mut self) -> Result<String, String> {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}))?;
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        )?;
        attached["sessionId"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| format!("no session in {attached}"))
    }

    /// Evaluates `expression` in the page and returns its value (an exception is an error).
    pub fn eval(&mut self, session: &str, expression: &str) -> Result<Value, String> {
        let r = self.call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(format!("{expression}: {ex}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Clicks the middle of the element `selector` selects (scrolled into view), as a mouse.
    pub fn click(&mut self, session: &str, selector: &str) -> Result<(), String> {
        let sel = serde_json::to_string(selector).map_err(|e| e.to_string())?;
        let at = self.eval(
            session,
            &format!(
                "(() => {{ const e = document.querySelector({sel}); if (!e) return null; \
                 e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
                 return [r.left + r.width / 2, r.top + r.height / 2]; }})()"
            ),
        )?;
        let (Some(x), Some(y)) = (at[0].as_f64(), at[1].as_f64()) else {
            return Err(format!("no element {selector}"));
        };
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                Some(session),
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )?;
        }
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.call(None, "Browser.close", json!({}));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A started browser not yet connected: killed if connecting fails.
struct PendingBrowser {
    child: Option<Child>,
}

impl PendingBrowser {
    /// Waits for chromium to write `DevToolsActivePort` (port, then path) into its profile.
    fn devtools_url(&mut self, profile: &Path) -> Result<String, String> {
        let file = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(text) = std::fs::read_to_string(&file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    return Ok(format!("ws://127.0.0.1:{port}{path}"));
                }
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                let log = std::fs::read_to_string(profile.join("chromium.log")).unwrap_or_default();
                return Err(format!(
                    "chromium exited ({status}) before listening:\n{log}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("chromium did not open its DevTools port within 30 s".into())
    }
}

impl Drop for PendingBrowser {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A websocket client connection (RFC 6455) over plain TCP: text messages only.
struct WebSocket {
    stream: TcpStream,
    /// Bytes received and not yet parsed into frames.
    buf: Vec<u8>,
    /// Payload of a fragmented message so far.
    partial: Vec<u8>,
}

impl WebSocket {
    /// Opens `ws://host:port/path` and performs the opening handshake.
    fn connect(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("ws://").ok_or("not a ws:// URL")?;
        let (host, path) = rest.split_once('/').ok_or("no path in the URL")?;
        let mut stream = TcpStream::connect(host).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| e.to_string())?;
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
            ^ u128::from(std::process::id());
        let key = base64::engine::general_purpose::STANDARD.encode(nonce.to_le_bytes());
        write!(
            stream,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let mut ws = Self {
            stream,
            buf: Vec::new(),
            partial: Vec::new(),
        };
        let deadline = Instant::now() + TIMEOUT;
        let end = loop {
            if let Some(i) = ws.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            ws.fill(deadline)?;
        };
        let head = String::from_utf8_lossy(&ws.buf[..end]).to_string();
        if !head.starts_with("HTTP/1.1 101") {
            return Err(format!("handshake refused: {head}"));
        }
        ws.buf.drain(..end);
        Ok(ws)
    }

    /// Reads more bytes into the buffer (waiting at most until `deadline`).
    fn fill(&mut self, deadline: Instant) -> Result<(), String> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            if Instant::now() > deadline {
                return Err("timed out waiting for the browser".into());
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err("the browser closed the connection".into()),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(format!("browser connection: {e}")),
            }
        }
    }

    /// One frame from the buffer: (fin, opcode, payload), or `None` if incomplete.
    fn frame(&mut self) -> Option<(bool, u8, Vec<u8>)> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        let (fin, opcode, masked) = (b[0] & 0x80 != 0, b[0] & 0x0f, b[1] & 0x80 != 0);
        let (len, mut at) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().ok()?) as usize, 10),
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        let mask = if masked {
            let m: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
            at += 4;
            Some(m)
        } else {
            None
        };
        let mut payload = b.get(at..at + len)?.to_vec();
        if let Some(m) = mask {
            payload
                .iter_mut()
                .enumerate()
                .for_each(|(i, x)| *x ^= m[i % 4]);
        }
        self.buf.drain(..at + len);
        Some((fin, opcode, payload))
    }

    /// The next text message (answering pings, joining fragments).
    fn read_text(&mut self, deadline: Instant) -> Result<String, String> {
        loop {
            while let Some((fin, opcode, payload)) = self.frame() {
                match opcode {
                    0..=2 => {
                        self.partial.extend_from_slice(&payload);
                        if fin {
                            let msg = std::mem::take(&mut self.partial);
                            return String::from_utf8(msg).map_err(|e| e.to_string());
                        }
                    }
                    8 => return Err("the browser closed the websocket".into()),
                    9 => self.send(10, &payload).map_err(|e| e.to_string())?,
                    _ => {}
                }
            }
            self.fill(deadline)?;
        }
    }

    /// Sends a text message.
    fn send_text(&mut self, text: &str) -> std::io::Result<()> {
        self.send(1, text.as_bytes())
    }

    /// Sends one masked frame, as a client must.
    fn send(&mut self, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= usize::from(u16::MAX) => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x5a, 0x13, 0xc7, 0x2e];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, x)| x ^ mask[i % 4]));
        self.stream.write_all(&frame)
    }
}
