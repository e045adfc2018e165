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
