//! Terminal styling: colours only where a person reads them (a TTY, or
//! `--color always`), plain text for pipes and CI logs.

use anstyle::{AnsiColor, Style};

use crate::cli::ColorChoice;
use crate::commands::CliError;

pub(crate) const ERROR: Style = AnsiColor::Red.on_default().bold();
pub(crate) const WARN: Style = AnsiColor::Yellow.on_default().bold();
pub(crate) const OK: Style = AnsiColor::Green.on_default().bold();
pub(crate) const DIM: Style = Style::new().dimmed();
pub(crate) const BOLD: Style = Style::new().bold();
pub(crate) const ACCENT: Style = AnsiColor::Cyan.on_default();

pub(crate) fn init(choice: ColorChoice) {
    let choice = match choice {
        ColorChoice::Auto => anstream::ColorChoice::Auto,
        ColorChoice::Always => anstream::ColorChoice::Always,
        ColorChoice::Never => anstream::ColorChoice::Never,
    };
    choice.write_global();
}

/// `text` wrapped in `style`; anstream strips it again when colours are off.
pub(crate) fn paint(style: Style, text: impl std::fmt::Display) -> String {
    format!("{style}{text}{style:#}")
}

pub(crate) fn print_error(err: &CliError) {
    anstream::eprintln!("{}: {}", paint(ERROR, "error"), err.message());
    if let Some(hint) = err.hint() {
        anstream::eprintln!("  {} {hint}", paint(ACCENT, "help:"));
    }
}

/// `println!` that survives a closed pipe: `testkube split ... | head -1`
/// must end quietly, not panic. Any other write error ends the process with
/// a message, since nothing more can be reported anyway.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(err) = writeln!(anstream::stdout(), $($arg)*) {
            $crate::style::stdout_failed(&err);
        }
    }};
}
pub(crate) use outln;

/// Writes `text` as is to stdout, with [`outln!`]'s handling of errors.
pub(crate) fn out(text: &str) {
    use std::io::Write as _;
    if let Err(err) = anstream::stdout().write_all(text.as_bytes()) {
        stdout_failed(&err);
    }
}

pub(crate) fn stdout_failed(err: &std::io::Error) -> ! {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    anstream::eprintln!(
        "{}: cannot write to standard output: {err}",
        paint(ERROR, "error")
    );
    std::process::exit(1);
}

/// The longest step name a terminal line shows; records and JSON keep names whole.
const NAME_WIDTH: usize = 60;

/// A step name for one terminal line: cut to [`NAME_WIDTH`] characters with `…`.
pub(crate) fn short_name(name: &str) -> std::borrow::Cow<'_, str> {
    if name.chars().count() <= NAME_WIDTH {
        return name.into();
    }
    let cut: String = name.chars().take(NAME_WIDTH - 1).collect();
    format!("{cut}…").into()
}
