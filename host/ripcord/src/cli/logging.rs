//! Logging setup. Text for people; JSON lines for machines, shaped so both log pipelines ripcord runs under read
//! them as structured records without configuration: top-level `message`, `severity` (Cloud Logging's level field,
//! for Cloud Run Jobs) and `level` (Lambda's advanced logging controls), `timestamp`, `target`, and the event's
//! fields flattened beside them.

use serde_json::{Map, Value};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Output format of the logs on stderr.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

pub(crate) fn init(format: LogFormat, filter: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colours only on a terminal: a log file or a CI log must not carry escape sequences.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.event_format(JsonLine).init(),
    }
}

/// One JSON object per event.
struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let metadata = event.metadata();
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(ripcord::model::time::format_timestamp(now_ms())));
        line.insert("severity".into(), Value::String(severity(metadata.level()).into()));
        line.insert("level".into(), Value::String(metadata.level().as_str().into()));
        line.insert("target".into(), Value::String(metadata.target().into()));
        line.insert("message".into(), fields.0.remove("message").unwrap_or(Value::String(String::new())));
        for (key, value) in fields.0 {
            line.entry(key).or_insert(value);
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Cloud Logging's name for a level.
fn severity(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        _ => "DEBUG",
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// An event's fields as JSON values.
struct Fields(Map<String, Value>);

impl Fields {
    /// A text field; one holding a JSON object (an audit record) is embedded as that object, so log queries can
    /// reach into it.
    fn text(&mut self, field: &Field, text: String) {
        let value = match text.starts_with('{') {
            true => serde_json::from_str::<Map<String, Value>>(&text).map_or(Value::String(text), Value::Object),
            false => Value::String(text),
        };
        self.0.insert(field.name().into(), value);
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value.to_string());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
}
