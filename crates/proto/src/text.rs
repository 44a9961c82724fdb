//! Text that came from a peer, made safe to show: every string a peer controls (file names, node names,
//! error messages) passes through [`Escaped`] before it reaches a terminal or a log line.
//!
//! A terminal obeys control characters: ESC sequences clear the screen, set the window title or write the
//! clipboard (OSC 52), a carriage return overwrites the line. Unicode format characters (category Cf: bidi
//! overrides and isolates, zero-width characters) reorder or hide text, so `invoice\u{202e}txt.exe` reads
//! as `invoiceexe.txt`. Both kinds are shown as visible escapes (`\x1b`, `\u{202e}`); everything else,
//! other scripts and emoji included, is shown as it is.

use std::fmt;

/// `text` with C0 and C1 controls, DEL and Unicode format characters shown as visible escapes.
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(needs_escape) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            match c {
                c if (c as u32) < 0x100 => write!(f, "\\x{:02x}", c as u32)?,
                c => write!(f, "\\u{{{:x}}}", c as u32)?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// `text` escaped for a terminal, as an owned string.
pub fn escape(text: &str) -> String {
    Escaped(text).to_string()
}

fn needs_escape(c: char) -> bool {
    c.is_control() || is_format_char(c)
}

/// Whether `c` is a Unicode format character (general category Cf, Unicode 16): invisible characters that
/// change how the text around them is shown.
pub fn is_format_char(c: char) -> bool {
    const CF: [(u32, u32); 21] = [
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    let c = c as u32;
    CF.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// `1536` -> `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// The longest start of `text` that fits `max` bytes, cut at a character boundary.
pub fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(1 << 30), "1.0 GiB");
    }

    #[test]
    fn controls_and_format_characters_become_visible() {
        assert_eq!(escape("plain name.txt"), "plain name.txt");
        assert_eq!(escape("ünïcødé 日本 🎉"), "ünïcødé 日本 🎉");
        assert_eq!(escape("\x1b]52;c;ZXZpbA==\x07"), "\\x1b]52;c;ZXZpbA==\\x07");
        assert_eq!(escape("a\rb\nc\x7fd\u{9b}e"), "a\\x0db\\x0ac\\x7fd\\x9be");
        assert_eq!(escape("invoice\u{202e}txt.exe"), "invoice\\u{202e}txt.exe");
        assert_eq!(escape("zero\u{200b}width\u{2066}iso\u{feff}"), "zero\\u{200b}width\\u{2066}iso\\u{feff}");
    }

    #[test]
    fn escaped_text_holds_no_control_or_format_character() {
        let all: String = (0..0x11_0000).filter_map(char::from_u32).collect();
        assert!(!escape(&all).chars().any(|c| c.is_control() || is_format_char(c)));
    }
}
