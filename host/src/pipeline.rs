//! What a worker does with a job: ask the provider (with retries), fall
//! back to the connector's message when it keeps failing, and deliver the
//! replies through the channel's `translate-out`.

use crate::bindings::{AddressedReply, ErrorKind, InboundMessage, OutboundMessage, PluginError};
use crate::config::RetryConfig;
use crate::connector::Connector;
use crate::queue::{Job, JobHandler};
use crate::runtime::{Binding, CallError, Runtime};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Runs jobs against the connectors.
pub struct Pipeline {
    pub runtime: Arc<Runtime>,
    pub connectors: Arc<HashMap<String, Arc<Connector>>>,
    pub retry: RetryConfig,
}

#[async_trait]
impl JobHandler for Pipeline {
    async fn handle(&self, job: Job) {
        match job {
            Job::Answer { connector, message } => match self.connectors.get(&connector) {
                Some(connector) => self.answer(connector, message).await,
                None => tracing::warn!(%connector, "dropping job for a connector that no longer exists"),
            },
            Job::Deliver { connector, reply } => match self.connectors.get(&connector) {
                Some(connector) => self.deliver(connector, reply).await,
                None => tracing::warn!(%connector, "dropping reply for a connector that no longer exists"),
            },
        }
    }
}

/// One failed attempt, whether the plugin reported it or the sandbox did.
enum Failure {
    Plugin(PluginError),
    Sandbox(CallError),
}

impl Failure {
    fn is_transient(&self) -> bool {
        matches!(self, Failure::Plugin(error) if error.kind == ErrorKind::Transient)
    }

    fn describe(&self) -> String {
        match self {
            Failure::Plugin(error) => {
                let kind = match error.kind {
                    ErrorKind::Transient => "transient",
                    ErrorKind::Permanent => "permanent",
                    ErrorKind::Config => "configuration",
                };
                format!("{kind} error: {}", error.message)
            }
            Failure::Sandbox(error) => error.to_string(),
        }
    }

    fn user_message(&self) -> Option<String> {
        match self {
            Failure::Plugin(error) => error.user_message.clone(),
            Failure::Sandbox(_) => None,
        }
    }
}

impl Pipeline {
    async fn answer(&self, connector: &Connector, message: InboundMessage) {
        let span = tracing::info_span!("answer", tenant = %connector.tenant, connector = %connector.id, conversation = %message.conversation.id);
        let _guard = span.enter();
        let messages = match self.ask_provider(connector, &message).await {
            Ok(messages) => messages,
            Err(failure) => {
                tracing::error!(error = %failure.describe(), "provider failed; sending the fallback message");
                let text = failure.user_message().unwrap_or_else(|| connector.fallback_message.clone());
                vec![OutboundMessage { text, buttons: Vec::new(), files: Vec::new(), control: None }]
            }
        };
        if messages.is_empty() {
            return;
        }
        let reply = AddressedReply { conversation: message.conversation.clone(), in_reply_to: Some(message), messages };
        self.deliver(connector, reply).await;
    }

    async fn ask_provider(&self, connector: &Connector, message: &InboundMessage) -> Result<Vec<OutboundMessage>, Failure> {
        self.with_retries(&connector.provider, "provider call", || async {
            match self.runtime.call_provider(&connector.provider, message.clone()).await {
                Ok(Ok(messages)) => Ok(messages),
                Ok(Err(error)) => Err(Failure::Plugin(error)),
                Err(error) => Err(Failure::Sandbox(error)),
            }
        })
        .await
    }

    async fn deliver(&self, connector: &Connector, reply: AddressedReply) {
        let result = self
            .with_retries(&connector.channel, "delivery", || async {
                match self.runtime.translate_out(&connector.channel, reply.clone()).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(error)) => Err(Failure::Plugin(error)),
                    Err(error) => Err(Failure::Sandbox(error)),
                }
            })
            .await;
        if let Err(failure) = result {
            tracing::error!(
                tenant = %connector.tenant, connector = %connector.id, conversation = %reply.conversation.id,
                error = %failure.describe(), "reply could not be delivered to the platform"
            );
        }
    }

    /// Retry transient failures with exponential backoff.
    async fn with_retries<T, F, Fut>(&self, binding: &Binding, what: &str, mut attempt: F) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut backoff = Duration::from_millis(self.retry.initial_backoff_ms);
        for number in 1..=self.retry.attempts {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(failure) if failure.is_transient() && number < self.retry.attempts => {
                    tracing::warn!(plugin = %binding.plugin.name, attempt = number, error = %failure.describe(), "{what} failed; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(failure) => return Err(failure),
            }
        }
        unreachable!("retry.attempts is validated to be at least 1")
    }
}
