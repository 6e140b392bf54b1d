//! Traces over OTLP, and the W3C trace context carried across RabbitMQ.
//!
//! Off unless an OTLP endpoint is set with the standard variables:
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL, `.../v1/traces`) or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (the base: `/v1/traces` is added); the
//! exporter speaks OTLP over HTTP with protobuf and reads the other
//! `OTEL_EXPORTER_OTLP_*` variables (headers, timeout, compression) itself.
//! `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off;
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_TRACES_SAMPLER`
//! (with `OTEL_TRACES_SAMPLER_ARG`) are honoured. Spans carry ids (svix-id,
//! Clerk user id, event type, outcome), never a body, an e-mail or a name.
//!
//! The context travels as `traceparent` (and `tracestate`) headers: read
//! from the webhook request, written into each message, read again by the
//! worker.

use lapin::types::FieldTable;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use opentelemetry::Context;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether traces are exported by this process; spans that exist only for
/// them (one per event in the worker) are not made otherwise.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Whether the environment asks for traces (see the module's
/// documentation), given how to read a variable. Pure.
pub fn wanted(var: &dyn Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| var(name).is_some_and(|value| !value.trim().is_empty());
    let is =
        |name: &str, value: &str| var(name).is_some_and(|v| v.trim().eq_ignore_ascii_case(value));
    (set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || set("OTEL_EXPORTER_OTLP_ENDPOINT"))
        && !is("OTEL_SDK_DISABLED", "true")
        && !is("OTEL_TRACES_EXPORTER", "none")
}

/// The layer that turns spans into OpenTelemetry spans.
pub(crate) type OtlpLayer<S> =
    tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>;

/// The exporting pipeline, when on: flushed by [`Traces::shutdown`].
#[derive(Debug, Default)]
pub struct Traces {
    provider: Option<SdkTracerProvider>,
}

impl Traces {
    /// The tracer provider and the layer that feeds it, when the
    /// environment asks for traces; `service` names the process unless
    /// `OTEL_SERVICE_NAME` does.
    /// `var` reads a variable: the process's environment, or a test's.
    pub(crate) fn start<S>(
        service: &'static str,
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Self, Option<OtlpLayer<S>>), String>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        if !wanted(var) {
            return Ok((Self::default(), None));
        }
        // The exporter reads the process's OTEL_EXPORTER_OTLP_* itself; the
        // traces endpoint is passed on, so that `var` decides it.
        let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_http();
        if let Some(endpoint) = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| {
            var("OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
        }) {
            exporter = exporter.with_endpoint(endpoint);
        }
        let exporter = exporter
            .build()
            .map_err(|e| format!("OTLP exporter (OTEL_EXPORTER_OTLP_*): {e}"))?;
        let mut resource = opentelemetry_sdk::Resource::builder();
        if var("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name(service);
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer(service));
        ENABLED.store(true, Ordering::Relaxed);
        Ok((
            Self {
                provider: Some(provider),
            },
            Some(layer),
        ))
    }

    /// Send what is still buffered; at the end of the process.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "traces: the last spans could not be sent");
        }
    }
}

/// A span that exists only for the traces: `make`'s while they are
/// exported, else none (nothing to record, nothing to log).
pub fn span(make: impl FnOnce() -> tracing::Span) -> tracing::Span {
    if enabled() {
        make()
    } else {
        tracing::Span::none()
    }
}

/// The trace context `get` (a header by its lower-case name) carries, or an
/// empty one.
pub fn context_from(get: impl Fn(&str) -> Option<String>) -> Context {
    struct Headers(Vec<(&'static str, String)>);
    impl Extractor for Headers {
        fn get(&self, key: &str) -> Option<&str> {
            self.0
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, value)| value.as_str())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.iter().map(|(name, _)| *name).collect()
        }
    }
    let headers = ["traceparent", "tracestate"]
        .into_iter()
        .filter_map(|name| Some((name, get(name)?)))
        .collect();
    TraceContextPropagator::new().extract(&Headers(headers))
}

/// Make `span` a child of the context `parent` carries, when it carries one.
pub fn set_parent(span: &tracing::Span, parent: Context) {
    if enabled() && parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// Link `span` to the context `other` carries (an event of a batch).
pub fn add_link(span: &tracing::Span, other: &Context) {
    let context = other.span().span_context().clone();
    if enabled() && context.is_valid() {
        span.add_link(context);
    }
}

/// `span`'s trace context as the headers that carry it (W3C
/// `traceparent`, `tracestate`); none when traces are off.
pub fn context_headers(span: &tracing::Span) -> Vec<(String, String)> {
    struct Pairs(Vec<(String, String)>);
    impl Injector for Pairs {
        fn set(&mut self, key: &str, value: String) {
            self.0.push((key.to_owned(), value));
        }
    }
    let mut pairs = Pairs(Vec::new());
    if enabled() {
        TraceContextPropagator::new().inject_context(&span.context(), &mut pairs);
    }
    pairs.0
}

/// The trace context a message's headers carry.
pub fn context_of(headers: Option<&FieldTable>) -> Context {
    context_from(|key| headers.and_then(|h| crate::amqp_value::header_text(h, key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn traces_are_off_unless_an_endpoint_is_set() {
        assert!(!wanted(&env(&[])));
        assert!(!wanted(&env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])));
        assert!(wanted(&env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://c:4318"
        )])));
        assert!(wanted(&env(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://c:4318/v1/traces"
        )])));
        for off in [
            ("OTEL_SDK_DISABLED", "TRUE"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            assert!(!wanted(&env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                off
            ])));
        }
    }

    #[test]
    fn an_endpoint_that_is_not_a_url_is_refused_and_leaves_traces_off() {
        let var = env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "not a url")]);
        let started = Traces::start::<tracing_subscriber::Registry>("clerk-sync-test", &var);
        let problem = started.err().unwrap_or_default();
        assert!(
            problem.starts_with("OTLP exporter (OTEL_EXPORTER_OTLP_*): "),
            "{problem}"
        );
        assert!(!enabled());
    }

    #[test]
    fn a_w3c_traceparent_is_read() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = context_from(|key| (key == "traceparent").then(|| parent.to_owned()));
        let span = context.span();
        let read = span.span_context();
        assert!(read.is_valid() && read.is_remote());
        assert_eq!(
            read.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(
            !context_from(|_| Some("garbage".to_owned()))
                .span()
                .span_context()
                .is_valid()
        );
    }
}
