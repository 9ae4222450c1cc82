//! Text for a human's terminal: control characters made visible.
//!
//! Alert names and reasons, resource labels, log lines and file names reach
//! the CLI's output from whoever controls a workload, an Alertmanager rule or
//! a file on a managed host. A raw ESC or BEL in them is an instruction to
//! the operator's terminal (OSC 52 writes the clipboard, other sequences
//! retitle the window, move the cursor or hide text), so every human-readable
//! output goes through [`TerminalSafe`], which prints such characters as
//! escapes (`\x1b`, `\u{9b}`). Newline and tab keep their meaning. Machine
//! outputs (`log export`, `policy eval`) are JSON, whose escaping already
//! covers control characters, and are not wrapped.

use std::fmt::Write as _;
use std::io::{self, Write};

/// Whether a character must not reach a terminal as is: C0 controls other
/// than newline and tab, DEL, C1 controls (some terminals act on U+009B as
/// CSI), and the bidirectional overrides that reorder what is shown.
fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped(out: &mut String, c: char) {
    if (c as u32) < 0x80 {
        let _ = write!(out, "\\x{:02x}", c as u32);
    } else {
        let _ = write!(out, "\\u{{{:x}}}", c as u32);
    }
}

/// `text` with every unsafe character written as an escape.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A writer that escapes control characters on their way to a terminal
/// (bytes that are not UTF-8 are written as `\xNN`).
pub struct TerminalSafe<W: Write> {
    inner: W,
    /// The start of a UTF-8 sequence split across two writes.
    pending: Vec<u8>,
}

impl<W: Write> TerminalSafe<W> {
    pub fn new(inner: W) -> Self {
        TerminalSafe {
            inner,
            pending: Vec::new(),
        }
    }
}

impl<W: Write> Write for TerminalSafe<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut bytes = std::mem::take(&mut self.pending);
        bytes.extend_from_slice(buf);
        let mut out = String::with_capacity(bytes.len());
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    out.push_str(&escape_controls(text));
                    rest = &[];
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    // Checked by from_utf8 up to valid_up_to.
                    out.push_str(&escape_controls(
                        std::str::from_utf8(good).unwrap_or_default(),
                    ));
                    match e.error_len() {
                        Some(n) => {
                            for b in &bad[..n] {
                                let _ = write!(out, "\\x{b:02x}");
                            }
                            rest = &bad[n..];
                        }
                        None => {
                            // An incomplete sequence at the end: wait for the rest.
                            self.pending = bad.to_vec();
                            rest = &[];
                        }
                    }
                }
            }
        }
        self.inner.write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        for b in std::mem::take(&mut self.pending) {
            write!(self.inner, "\\x{b:02x}")?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for TerminalSafe<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc52_bel_csi_and_bidi_overrides_become_visible() {
        let hostile = "disk\x1b]52;c;cm0gLXJmIH4=\x07 full\r\u{9b}31m\u{202e}gpj.exe\x7f";
        let shown = escape_controls(hostile);
        assert_eq!(
            shown,
            "disk\\x1b]52;c;cm0gLXJmIH4=\\x07 full\\x0d\\u{9b}31m\\u{202e}gpj.exe\\x7f"
        );
        assert!(!shown.chars().any(is_unsafe));
        // Ordinary text, newlines, tabs and non-Latin scripts pass untouched.
        let plain = "naïve café\tкластер 集群\nnext line";
        assert!(matches!(
            escape_controls(plain),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn the_writer_escapes_across_split_writes_and_bad_bytes() {
        let mut w = TerminalSafe::new(Vec::new());
        let text = "é\x1b[2J".as_bytes();
        w.write_all(&text[..1]).unwrap();
        w.write_all(&text[1..]).unwrap();
        w.write_all(&[0xff, b'\n']).unwrap();
        w.flush().unwrap();
        let out = String::from_utf8(w.inner.clone()).unwrap();
        assert_eq!(out, "é\\x1b[2J\\xff\n");
    }
}
