//! The service-log sink, as in Coder: with `--log-json` and `--log-human`, every ingested
//! event is written as a `connection_log` line, in Coder's JSON or human slog format, to
//! standard error, standard output or a file.
//!
//! The plugin formats the lines (so that every host writes the same bytes); the service
//! hands them over only after the batch's transaction committed, so no line ever describes
//! an event that was not stored. This module only routes each line to its destination.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::model::{LogFormat, LogLine};

use crate::plugin::ServiceLogSink;

/// Where one format's lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    Stderr,
    Stdout,
    File(PathBuf),
}

impl LogTarget {
    /// `/dev/stderr` and `-` mean standard error, `/dev/stdout` standard output, as Coder's
    /// `--log-human /dev/stderr`; anything else is a file, appended to.
    pub fn parse(arg: &Path) -> Self {
        match arg.to_str() {
            Some("/dev/stderr" | "-") => LogTarget::Stderr,
            Some("/dev/stdout") => LogTarget::Stdout,
            _ => LogTarget::File(arg.to_owned()),
        }
    }

    fn open(&self) -> io::Result<Output> {
        Ok(match self {
            LogTarget::Stderr => Output::Stderr,
            LogTarget::Stdout => Output::Stdout,
            LogTarget::File(path) => Output::File(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?,
            ),
        })
    }
}

enum Output {
    Stderr,
    Stdout,
    File(File),
}

impl Output {
    fn write_lines(&mut self, lines: &mut dyn Iterator<Item = &str>) -> io::Result<()> {
        let mut buf = String::new();
        for line in lines {
            buf.push_str(line);
            buf.push('\n');
        }
        if buf.is_empty() {
            return Ok(());
        }
        match self {
            Output::Stderr => {
                let mut err = io::stderr().lock();
                err.write_all(buf.as_bytes())?;
                err.flush()
            }
            Output::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(buf.as_bytes())?;
                out.flush()
            }
            Output::File(f) => f.write_all(buf.as_bytes()),
        }
    }
}

/// Writes each format's lines to its own destination.
pub struct ServiceLogWriter {
    outputs: Vec<(LogFormat, Mutex<Output>)>,
}

impl ServiceLogWriter {
    /// Opens every destination now, so that a bad path fails the command at start.
    pub fn open(targets: &[(LogFormat, LogTarget)]) -> io::Result<Self> {
        let mut outputs = Vec::with_capacity(targets.len());
        for (format, target) in targets {
            outputs.push((*format, Mutex::new(target.open()?)));
        }
        Ok(Self { outputs })
    }

    /// The formats the plugin must produce.
    pub fn formats(&self) -> Vec<LogFormat> {
        self.outputs.iter().map(|(f, _)| *f).collect()
    }
}

impl ServiceLogSink for ServiceLogWriter {
    fn write(&self, lines: &[LogLine]) {
        for (format, output) in &self.outputs {
            let mut selected = lines
                .iter()
                .filter(|l| l.format == *format)
                .map(|l| l.line.as_str());
            let mut output = output.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = output.write_lines(&mut selected) {
                // The events are stored already; a log sink failure must not undo that.
                tracing::warn!("writing the service log: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_each_format_to_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("json.log");
        let human = dir.path().join("human.log");
        let writer = ServiceLogWriter::open(&[
            (LogFormat::Json, LogTarget::File(json.clone())),
            (LogFormat::Human, LogTarget::File(human.clone())),
        ])
        .unwrap();
        assert_eq!(writer.formats(), vec![LogFormat::Json, LogFormat::Human]);
        writer.write(&[
            LogLine {
                format: LogFormat::Json,
                line: "{\"msg\":\"connection_log\"}".into(),
            },
            LogLine {
                format: LogFormat::Human,
                line: "[API] connection_log".into(),
            },
        ]);
        writer.write(&[LogLine {
            format: LogFormat::Json,
            line: "second".into(),
        }]);
        assert_eq!(
            std::fs::read_to_string(json).unwrap(),
            "{\"msg\":\"connection_log\"}\nsecond\n"
        );
        assert_eq!(
            std::fs::read_to_string(human).unwrap(),
            "[API] connection_log\n"
        );
    }

    #[test]
    fn std_streams_by_name() {
        assert_eq!(
            LogTarget::parse(Path::new("/dev/stderr")),
            LogTarget::Stderr
        );
        assert_eq!(LogTarget::parse(Path::new("-")), LogTarget::Stderr);
        assert_eq!(
            LogTarget::parse(Path::new("/dev/stdout")),
            LogTarget::Stdout
        );
        assert_eq!(
            LogTarget::parse(Path::new("x.log")),
            LogTarget::File("x.log".into())
        );
    }
}
