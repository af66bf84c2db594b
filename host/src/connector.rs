//! Connectors: a tenant's platform bot joined to a provider, with each side
//! bound to its plugin, settings and state scope.

use crate::config::{Config, ConnectorConfig, PluginSection, RoutingConfig};
use crate::runtime::{AllowList, Binding, Manifest, NetworkPolicy, OutboundLimiter, PluginContext, RateLimit, Runtime, StateQuota};
use crate::store::{Scope, StateStore};
use anyhow::{Context, bail};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// A connector ready to serve.
pub struct Connector {
    pub id: String,
    pub tenant: String,
    pub fallback_message: String,
    pub channel: Binding,
    pub provider: Binding,
    /// The help-desk plugin for human handoff, if configured.
    pub handoff: Option<Binding>,
    pub routing: RoutingConfig,
    /// Where the host keeps its own per-conversation records.
    pub host_scope: Scope,
    /// Variables of inbound messages blanked at intake (secret, not forwarded).
    pub withheld_variables: Vec<String>,
}

/// The plugin name of the host's own state scope; `#` cannot appear in
/// plugin names, so no plugin can read it.
const HOST_SCOPE: &str = "#host";

impl Connector {
    /// Blank the variables that carry platform credentials the connector
    /// does not forward; their names stay, so providers see the same list.
    pub fn withhold_secrets(&self, message: &mut crate::bindings::InboundMessage) {
        for (name, value) in &mut message.variables {
            if self.withheld_variables.contains(name) {
                value.clear();
            }
        }
    }

    /// The plugin binding that answers callbacks to `/hooks/{id}/{plugin}`.
    pub fn callback_target(&self, plugin: &str) -> Option<&Binding> {
        [Some(&self.provider), self.handoff.as_ref()].into_iter().flatten().find(|b| b.plugin.name == plugin)
    }
}

/// Build every configured connector against the loaded plugins.
pub fn build_all(config: &Config, runtime: &Runtime, state: &Arc<dyn StateStore>) -> anyhow::Result<HashMap<String, Arc<Connector>>> {
    // One pool of outbound slots per tenant, shared by all its connectors.
    let mut outbound_slots: HashMap<String, Arc<Semaphore>> = HashMap::new();
    config
        .connectors
        .iter()
        .map(|c| {
            let slots = outbound_slots.entry(c.tenant.clone()).or_insert_with(|| Arc::new(Semaphore::new(config.sandbox.max_outbound_in_flight_per_tenant)));
            let connector = build(c, config, runtime, state, slots).with_context(|| format!("connector `{}`", c.id))?;
            Ok((c.id.clone(), Arc::new(connector)))
        })
        .collect()
}

fn build(
    connector: &ConnectorConfig,
    config: &Config,
    runtime: &Runtime,
    state: &Arc<dyn StateStore>,
    outbound_slots: &Arc<Semaphore>,
) -> anyhow::Result<Connector> {
    let side = |section: &PluginSection, expected: &str| -> anyhow::Result<Binding> {
        let Some(plugin) = runtime.plugin_for(&connector.tenant, &section.plugin) else {
            let known: Vec<String> = runtime.plugin_names().into_iter().map(|(name, kind)| format!("{name} ({kind})")).collect();
            bail!("unknown plugin `{}`; loaded plugins: {}", section.plugin, known.join(", "));
        };
        if plugin.kind_name() != expected {
            bail!("`{}` is a {} plugin but is used as the {expected}", section.plugin, plugin.kind_name());
        }
        let missing: Vec<String> =
            plugin.manifest.missing_settings(&section.settings).iter().map(|spec| format!("`{}` ({})", spec.name, spec.description)).collect();
        if !missing.is_empty() {
            bail!("the {expected} `{}` needs the setting(s) {}", section.plugin, missing.join(", "));
        }
        let context = plugin_context(connector, section, &plugin.manifest, config, Arc::clone(state), Arc::clone(outbound_slots))
            .with_context(|| format!("the {expected} `{}`", section.plugin))?;
        Ok(Binding { plugin, context: Arc::new(context) })
    };
    let channel = side(&connector.channel, "channel")?;
    let withheld_variables = withheld_variables(connector, &channel)?;
    Ok(Connector {
        id: connector.id.clone(),
        tenant: connector.tenant.clone(),
        fallback_message: connector.fallback_message.clone(),
        channel,
        provider: side(&connector.provider, "provider")?,
        handoff: connector.handoff.as_ref().map(|section| side(section, "handoff")).transpose()?,
        routing: connector.routing.clone(),
        host_scope: Scope { tenant: connector.tenant.clone(), connector: connector.id.clone(), plugin: HOST_SCOPE.into() },
        withheld_variables,
    })
}

/// The channel's secret variables minus those the connector forwards; a
/// forwarded name the channel does not declare secret is a mistake.
fn withheld_variables(connector: &ConnectorConfig, channel: &Binding) -> anyhow::Result<Vec<String>> {
    let secret = &channel.plugin.manifest.secret_variables;
    if let Some(unknown) = connector.forward_secret_variables.iter().find(|name| !secret.contains(name)) {
        bail!(
            "`forward_secret_variables` names `{unknown}`, which the channel `{}` does not declare secret (its secret variables: {})",
            channel.plugin.name,
            if secret.is_empty() { "none".to_string() } else { secret.join(", ") }
        );
    }
    Ok(secret.iter().filter(|name| !connector.forward_secret_variables.contains(name)).cloned().collect())
}

fn plugin_context(
    connector: &ConnectorConfig,
    section: &PluginSection,
    manifest: &Manifest,
    config: &Config,
    state: Arc<dyn StateStore>,
    outbound_slots: Arc<Semaphore>,
) -> anyhow::Result<PluginContext> {
    let outbound = Arc::new(AllowList::for_plugin(manifest, &section.settings));
    let rate_limit = RateLimit::from_settings(&section.settings).map_err(anyhow::Error::msg)?.map(|limit| Arc::new(OutboundLimiter::new(limit)));
    let mut settings = section.settings.clone();
    settings.insert("connector-id".into(), connector.id.clone());
    settings.insert("tenant-id".into(), connector.tenant.clone());
    if let Some(base) = &config.public_url {
        settings.insert("webhook-url".into(), format!("{}/hooks/{}", base.trim_end_matches('/'), connector.id));
    }
    Ok(PluginContext {
        scope: Scope { tenant: connector.tenant.clone(), connector: connector.id.clone(), plugin: section.plugin.clone() },
        settings,
        state,
        default_ttl: Duration::from_secs(u64::from(config.state_ttl_seconds)),
        state_quota: StateQuota::from_config(&config.sandbox),
        outbound,
        rate_limit,
        network: Arc::new(NetworkPolicy::parse(&config.sandbox.allow_private_networks).map_err(anyhow::Error::msg)?),
        outbound_slots,
    })
}
