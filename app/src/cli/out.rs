//! Standard output of the headless commands. A reader that goes away early (`… | head -1`)
//! ends the command quietly with status 0, as cargo and git stop on a closed pipe, instead of
//! the panic `println!` gives ("failed printing to stdout: Broken pipe").

use std::io::{self, Write};

/// Write `text` to standard output; a closed pipe ends the process quietly.
pub fn write(text: &str) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        closed(&e);
    }
}

/// Write one formatted line to standard output; a closed pipe ends the process quietly.
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        closed(&e);
    }
}

/// React to a failed write: a reader that went away ends the process quietly; other errors
/// (a full disk) are reported once on standard error.
fn closed(e: &io::Error) {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    let _ = writeln!(io::stderr(), "graflow: cannot write the output: {e}");
    std::process::exit(1);
}

/// A safety net for output written elsewhere (`println!` in a dependency, a write to a closed
/// standard error): the panic a closed pipe causes ends the process quietly instead.
pub fn quiet_on_closed_pipes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let text = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.starts_with("failed printing to") && text.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// `println!` for the headless commands: see [`line`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::out::line(format_args!($($arg)*))
    };
}

pub(crate) use outln;
