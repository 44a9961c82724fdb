//! What is on the terminal now: at most one bar or spinner (stderr), drawn a column narrower than the
//! terminal so that it never wraps, with lines printed above it; and the spinner and `serve`'s hashing
//! bar.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use console::Term;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use node::Hashing;

use crate::words::human_bytes;

/// The message is rebuilt at most this often (indicatif limits the drawing itself).
pub(crate) const REFRESH: Duration = Duration::from_millis(100);
/// Terminals this wide or wider show the bar itself and the byte counts; narrower ones keep the rate,
/// ETA and sources.
pub(crate) const WIDE: u16 = 100;

/// The bar or spinner on the terminal now, if any (one at a time): [`above`] prints past it.
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// `bar`, drawn on stderr (narrowed: [`Narrowed`]) as the one shown.
pub(crate) fn show(bar: ProgressBar) -> ProgressBar {
    bar.set_draw_target(ProgressDrawTarget::term_like(Box::new(Narrowed(Term::buffered_stderr()))));
    *shown() = Some(bar.clone());
    bar
}

/// Takes `bar` off the terminal: cleared, or left as it was on a line of its own.
pub(crate) fn unshow(bar: &ProgressBar, clear: bool) {
    shown().take();
    if clear {
        bar.finish_and_clear();
    } else {
        // What is printed next (an error, the resume hint) starts below it.
        bar.abandon();
        eprintln!();
    }
}

fn shown() -> std::sync::MutexGuard<'static, Option<ProgressBar>> {
    SHOWN.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Stderr as the bars see it: a column narrower than the terminal, so that no line reaches the last
/// column. There a terminal holds the cursor until the next character (or wraps at once), and a line of
/// exactly the terminal's width can push every later redraw a row down.
#[derive(Debug)]
struct Narrowed(Term);

impl TermLike for Narrowed {
    fn width(&self) -> u16 {
        self.0.size().1.saturating_sub(1)
    }

    fn height(&self) -> u16 {
        self.0.size().0
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_up(n)
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_down(n)
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_right(n)
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_left(n)
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.0.write_line(s)
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.0.write_str(s)
    }

    fn clear_line(&self) -> std::io::Result<()> {
        self.0.clear_line()
    }

    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Runs `print` with the bars lifted off the terminal, so that what it prints lands above them.
pub(crate) fn above<R>(print: impl FnOnce() -> R) -> R {
    // Cloned out of the lock: what `print` prints may log, which comes back here.
    let bar = shown().clone();
    match bar {
        Some(bar) => bar.suspend(print),
        None => print(),
    }
}

/// Whether progress is drawn: for people at a terminal, never with --json.
pub(crate) fn drawn(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// A spinner saying what the command waits for, where progress is drawn; cleared when dropped.
pub(crate) struct Spinner(Option<ProgressBar>);

impl Spinner {
    pub(crate) fn new(json: bool, waiting_for: &str) -> Self {
        let spinner = drawn(json).then(|| {
            let style = ProgressStyle::with_template("{spinner} {wide_msg} {elapsed}").expect("a valid template");
            let bar = show(ProgressBar::new_spinner().with_style(style));
            bar.enable_steady_tick(REFRESH);
            bar
        });
        let this = Self(spinner);
        this.say(waiting_for);
        this
    }

    /// Says what the command waits for now.
    pub(crate) fn say(&self, waiting_for: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(waiting_for.to_string());
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            unshow(&bar, true);
        }
    }
}

/// `serve`'s hashing of new and changed files, where progress is drawn: a bar while it lasts.
pub(crate) struct HashingBar {
    drawn: bool,
    bar: Option<ProgressBar>,
}

impl HashingBar {
    pub(crate) fn new(json: bool) -> Self {
        Self { drawn: drawn(json), bar: None }
    }

    /// Shows how far the hashing has come; the bar goes once every file is hashed.
    pub(crate) fn show(&mut self, h: Hashing) {
        if !self.drawn {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let wide = Term::stderr().size().1 >= WIDE;
            show(ProgressBar::new(h.bytes_total).with_style(style(wide)).with_prefix("hashing"))
        });
        let (done, total) = (human_bytes(h.bytes), human_bytes(h.bytes_total));
        bar.set_message(format!("{}/{} files, {done} of {total}; shared as hashed", h.files, h.files_total));
        bar.set_length(h.bytes_total.max(1));
        bar.set_position(h.bytes);
        if h.files == h.files_total {
            self.finish();
        }
    }

    pub(crate) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            unshow(&bar, true);
        }
    }
}

/// The bar's layout: with the bar itself where the terminal is [`WIDE`]. What does not fit is cut at
/// the right edge (`wide_msg`): the line never wraps.
pub(crate) fn style(wide: bool) -> ProgressStyle {
    let template = match wide {
        true => "{prefix} [{bar:20}] {percent:>3}% {wide_msg}",
        false => "{prefix} {percent:>3}% {wide_msg}",
    };
    ProgressStyle::with_template(template).expect("a valid template").progress_chars("=> ")
}
