//! What a plugin declares about itself: JSON in the component's
//! `switchboard-manifest` custom section (the SDK's `manifest!` macro writes
//! it). Read once, when the plugin is loaded.

use anyhow::Context as _;
use serde::Deserialize;

/// The custom section's name (the SDK's `manifest::SECTION`).
const SECTION: &str = "switchboard-manifest";

/// A plugin's manifest; a component without one declares nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Manifest {
    /// The plugin's own name (`dify`), for reports.
    pub name: Option<String>,
    /// The plugin's version (`1.2.0`).
    pub version: Option<String>,
    /// `channel`, `provider` or `handoff`: must match what it exports.
    pub kind: Option<String>,
    /// The contract version it was built against (`0.1.0`).
    pub contract: Option<String>,
    /// The settings it reads.
    pub settings: Vec<SettingSpec>,
    /// Host patterns the plugin always calls (`https://api.dify.ai`).
    pub outbound_hosts: Vec<String>,
    /// Settings whose URL value names a host the plugin calls (`base_url`).
    pub outbound_host_settings: Vec<String>,
    /// Variables of a channel's inbound messages that carry platform
    /// credentials (OAuth tokens): the host blanks them before anything
    /// else sees the message, unless the connector forwards them.
    pub secret_variables: Vec<String>,
}

/// One setting a plugin reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SettingSpec {
    pub name: String,
    /// A connector must set it.
    pub required: bool,
    /// Its value is a secret (API keys, passwords): write-only wherever the
    /// host shows settings.
    pub secret: bool,
    /// What it is, for error messages and the admin API.
    pub description: String,
}

impl Manifest {
    /// The settings a connector must set but `settings` lacks, each with
    /// its description.
    pub fn missing_settings<'a>(&'a self, settings: &std::collections::BTreeMap<String, String>) -> Vec<&'a SettingSpec> {
        self.settings.iter().filter(|spec| spec.required && settings.get(&spec.name).is_none_or(|value| value.trim().is_empty())).collect()
    }

    /// The manifest of a component, from the custom section of whichever
    /// of its core modules carries it.
    pub fn read(wasm: &[u8]) -> anyhow::Result<Self> {
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            if let wasmparser::Payload::CustomSection(section) = payload?
                && section.name() == SECTION
            {
                return serde_json::from_slice(section.data()).with_context(|| format!("its `{SECTION}` section is not a valid manifest"));
            }
        }
        Ok(Self::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty component with a custom section `name` holding `data`.
    fn component_with_section(name: &str, data: &[u8]) -> Vec<u8> {
        let mut wasm = wat::parse_str("(component)").unwrap();
        let mut payload = vec![u8::try_from(name.len()).unwrap()];
        payload.extend_from_slice(name.as_bytes());
        payload.extend_from_slice(data);
        wasm.push(0);
        wasm.push(u8::try_from(payload.len()).unwrap());
        wasm.extend(payload);
        wasm
    }

    #[test]
    fn the_shipped_plugins_declare_their_endpoints() {
        let plugins: std::collections::HashMap<_, _> = crate::app::SHIPPED_PLUGINS.iter().copied().collect();
        let dify = Manifest::read(plugins["dify"]).unwrap();
        assert_eq!(dify.outbound_host_settings, ["base_url"]);
        assert_eq!(dify.outbound_hosts, ["https://api.dify.ai"]);
        assert_eq!((dify.name.as_deref(), dify.kind.as_deref(), dify.contract.as_deref()), (Some("dify"), Some("provider"), Some("0.1.0")));
        assert_eq!(dify.version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
        let required: Vec<&str> = dify.settings.iter().filter(|s| s.required).map(|s| s.name.as_str()).collect();
        assert_eq!(required, ["base_url", "api_key"]);
        assert!(dify.settings.iter().any(|s| s.name == "api_key" && s.secret));
        let settings = [("base_url".to_string(), "https://api.dify.ai/v1".to_string())].into_iter().collect();
        let missing: Vec<&str> = dify.missing_settings(&settings).iter().map(|s| s.name.as_str()).collect();
        assert_eq!(missing, ["api_key"]);
        let bitrix = Manifest::read(plugins["bitrix24"]).unwrap();
        assert_eq!(bitrix.outbound_host_settings, ["portal_url", "oauth_url"]);
        assert_eq!(bitrix.secret_variables, ["access_token", "user_access_token", "bot_access_token"]);
    }

    #[test]
    fn a_component_without_a_manifest_declares_nothing() {
        assert_eq!(Manifest::read(&wat::parse_str("(component)").unwrap()).unwrap(), Manifest::default());
    }

    #[test]
    fn a_malformed_manifest_is_refused_with_its_reason() {
        let error = Manifest::read(&component_with_section(SECTION, br#"{"outbound_hosts": "not a list"}"#)).unwrap_err();
        assert!(format!("{error:#}").contains("not a valid manifest"), "{error:#}");
        let read = Manifest::read(&component_with_section(SECTION, br#"{"outbound_hosts": ["https://a.example"], "future_field": 1}"#)).unwrap();
        assert_eq!(read.outbound_hosts, ["https://a.example"], "fields of later SDKs are ignored");
    }
}
