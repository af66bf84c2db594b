//! The `register-bot` action: register the bot and its commands with a
//! portal (what BitBot's `/bitbot/` setup page does).

use crate::host_io;
use crate::installation::{self, Installation};
use crate::rest::{BOT_REGISTER, COMMAND_REGISTER, RestCall};
use crate::session::Portal;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard_sdk::{Pairs, PluginError, config, state};

/// The only action this plugin knows.
pub const REGISTER_BOT: &str = "register-bot";

/// One command from the `commands` setting.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CommandSpec {
    /// Command without the slash: latin letters and digits.
    pub command: String,
    /// Description shown in the command list (defaults to the command).
    #[serde(default)]
    pub title: String,
    /// Hint for the parameters.
    #[serde(default)]
    pub params: String,
    /// `Y`: available in every chat; `N`: only where the bot is.
    #[serde(default = "no", deserialize_with = "yes_no")]
    pub common: String,
    /// `Y`: hidden from the list (keyboard-only commands).
    #[serde(default = "no", deserialize_with = "yes_no")]
    pub hidden: String,
}

fn no() -> String {
    "N".to_string()
}

/// Accept `"Y"`/`"N"`, booleans, or nothing (→ `N`).
fn yes_no<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let value = Value::deserialize(deserializer)?;
    let yes = match &value {
        Value::Bool(flag) => *flag,
        Value::String(text) => matches!(text.trim().to_ascii_uppercase().as_str(), "Y" | "YES" | "TRUE" | "1"),
        _ => false,
    };
    Ok(if yes { "Y" } else { "N" }.to_string())
}

/// What to register, from the plugin settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BotSettings {
    /// `bot_code`: unique within the application.
    pub code: String,
    /// `bot_name`: shown in chats.
    pub name: String,
    /// `bot_type`: `B` chat bot, `O` Open Channels bot, `S` supervisor.
    pub bot_type: String,
    /// `commands`.
    pub commands: Vec<CommandSpec>,
    /// Host-provided `webhook-url`: where Bitrix24 sends events.
    pub webhook_url: String,
}

impl BotSettings {
    /// Read the settings through `get` (the plugin config in production).
    pub fn from_settings(get: impl Fn(&str) -> Option<String>) -> Result<Self, PluginError> {
        let webhook_url = get("webhook-url").ok_or_else(|| {
            PluginError::config(
                "the host does not know this connector's public webhook URL: set `public_url` in the host \
                 configuration so Bitrix24 can reach the connector",
            )
        })?;
        Ok(Self {
            code: get("bot_code").unwrap_or_else(|| "switchboard".into()),
            name: get("bot_name").unwrap_or_else(|| "Switchboard bot".into()),
            bot_type: get("bot_type").unwrap_or_else(|| "O".into()).to_ascii_uppercase(),
            commands: parse_commands(get("commands").as_deref())?,
            webhook_url,
        })
    }
}

/// Parse the `commands` setting: a JSON array of command objects.
pub fn parse_commands(json: Option<&str>) -> Result<Vec<CommandSpec>, PluginError> {
    let Some(json) = json.map(str::trim).filter(|json| !json.is_empty()) else {
        return Ok(Vec::new());
    };
    let mut commands: Vec<CommandSpec> = serde_json::from_str(json).map_err(|e| {
        PluginError::config(format!(
            "setting `commands` must be a JSON array like \
             [{{\"command\":\"help\",\"title\":\"Help\",\"params\":\"topic\"}}]: {e}"
        ))
    })?;
    for command in &mut commands {
        command.command = command.command.trim().trim_start_matches('/').to_string();
        if command.command.is_empty() || !command.command.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(PluginError::config(format!("command `{}` in setting `commands`: use latin letters and digits only", command.command)));
        }
        if command.title.is_empty() {
            command.title = command.command.clone();
        }
    }
    Ok(commands)
}

/// Credentials from the action arguments: `client_endpoint` + `access_token`
/// directly (with an optional `member_id`, whose refreshed tokens then
/// apply), or `member_id` naming a portal recorded at ONAPPINSTALL (its
/// tokens, refreshable with `client_id`/`client_secret`).
pub fn credentials_from_args(args: &Pairs, find_installation: impl FnOnce(&str) -> Result<Option<Installation>, PluginError>) -> Result<Portal, PluginError> {
    let arg = |name: &str| args.iter().find(|(key, value)| key == name && !value.trim().is_empty()).map(|(_, value)| value.trim().to_string());
    if let (Some(client_endpoint), Some(access_token)) = (arg("client_endpoint"), arg("access_token")) {
        return Ok(Portal {
            client_endpoint,
            member_id: arg("member_id").unwrap_or_default(),
            access_token,
            refresh_token: arg("refresh_token").unwrap_or_default(),
            expires: 0,
        });
    }
    let Some(member_id) = arg("member_id") else {
        return Err(PluginError::permanent(
            "register-bot needs `member_id` (a portal that installed the application) or both \
             `client_endpoint` and `access_token`",
        ));
    };
    let record = find_installation(&member_id)?.ok_or_else(|| {
        PluginError::config(format!(
            "no installation is recorded for member_id {member_id}: install the application on the portal \
             first so ONAPPINSTALL reaches this connector"
        ))
    })?;
    if record.client_endpoint.is_empty() || record.access_token.is_empty() {
        return Err(PluginError::config(format!("the installation of member_id {member_id} has no client_endpoint or access_token")));
    }
    Ok(Portal {
        expires: record.expires.trim().parse().unwrap_or(0),
        client_endpoint: record.client_endpoint,
        member_id,
        access_token: record.access_token,
        refresh_token: record.refresh_token,
    })
}

/// `imbot.register` parameters.
pub fn register_bot_call(settings: &BotSettings) -> RestCall {
    let hook = &settings.webhook_url;
    let mut params = json!({
        "CODE": settings.code,
        "TYPE": settings.bot_type,
        "EVENT_MESSAGE_ADD": hook,
        "EVENT_WELCOME_MESSAGE": hook,
        "EVENT_BOT_DELETE": hook,
        "PROPERTIES": { "NAME": settings.name },
    });
    if settings.bot_type == "O" {
        params["OPENLINE"] = "Y".into();
    }
    RestCall { method: BOT_REGISTER, params: into_map(params) }
}

/// `imbot.command.register` parameters. Bitrix24 hides commands that have
/// no English and German phrases, so both get the same title.
pub fn register_command_call(bot_id: &str, command: &CommandSpec, webhook_url: &str) -> RestCall {
    let phrase = |language: &str| json!({"LANGUAGE_ID": language, "TITLE": command.title, "PARAMS": command.params});
    let params = json!({
        "BOT_ID": bot_id,
        "COMMAND": command.command,
        "COMMON": command.common,
        "HIDDEN": command.hidden,
        "EXTRANET_SUPPORT": "N",
        "LANG": [phrase("en"), phrase("de")],
        "EVENT_COMMAND_ADD": webhook_url,
    });
    RestCall { method: COMMAND_REGISTER, params: into_map(params) }
}

fn into_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("built from an object literal"),
    }
}

/// The positive id in a REST `result` (number or numeric string).
pub fn id_from_result(method: &str, result: &Value) -> Result<String, PluginError> {
    let id = match result {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    };
    id.filter(|id| *id > 0).map(|id| id.to_string()).ok_or_else(|| PluginError::permanent(format!("Bitrix24 {method} returned no id: {result}")))
}

/// Run `register-bot`: register the bot, then each command.
pub fn register_bot(args: &Pairs) -> Result<String, PluginError> {
    let settings = BotSettings::from_settings(config::get)?;
    let portal = credentials_from_args(args, |member_id| state::get_json(&installation::state_key(member_id)))?;
    let mut session = host_io::session(portal);
    let mut call = |call: &RestCall| session.call(call);
    let bot_id = id_from_result(BOT_REGISTER, &call(&register_bot_call(&settings))?)?;
    for (registered, command) in settings.commands.iter().enumerate() {
        call(&register_command_call(&bot_id, command, &settings.webhook_url)).map_err(|mut error| {
            error.message = format!("registered bot {bot_id} and {registered} commands, then command `{}` failed: {}", command.command, error.message);
            error
        })?;
    }
    Ok(format!("registered bot {bot_id} with {} commands", settings.commands.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::ErrorKind;

    fn settings(pairs: &[(&str, &str)]) -> Result<BotSettings, PluginError> {
        let owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        BotSettings::from_settings(|key| owned.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
    }

    fn args(pairs: &[(&str, &str)]) -> Pairs {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_and_missing_webhook_url() {
        let error = settings(&[]).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config);
        assert!(error.message.contains("public_url"));
        let defaults = settings(&[("webhook-url", "https://sb.example/hooks/c1")]).unwrap();
        assert_eq!((defaults.code.as_str(), defaults.name.as_str(), defaults.bot_type.as_str()), ("switchboard", "Switchboard bot", "O"));
        assert!(defaults.commands.is_empty());
    }

    #[test]
    fn parses_the_commands_setting() {
        let commands =
            parse_commands(Some(r#"[{"command":"help","title":"Help","params":"topic","common":"Y","hidden":false},{"command":"/reset"}]"#)).unwrap();
        assert_eq!(commands[0], CommandSpec { command: "help".into(), title: "Help".into(), params: "topic".into(), common: "Y".into(), hidden: "N".into() });
        assert_eq!((commands[1].command.as_str(), commands[1].title.as_str(), commands[1].common.as_str()), ("reset", "reset", "N"));
        assert_eq!(parse_commands(Some("{")).unwrap_err().kind, ErrorKind::Config);
        assert!(parse_commands(Some(r#"[{"command":"two words"}]"#)).is_err());
    }

    #[test]
    fn register_calls_have_bitrix_field_names() {
        let settings = settings(&[("webhook-url", "https://sb.example/hooks/c1"), ("bot_name", "Helper")]).unwrap();
        let call = register_bot_call(&settings);
        assert_eq!(call.method, "imbot.register");
        assert_eq!(
            Value::Object(call.params),
            json!({
                "CODE": "switchboard", "TYPE": "O", "OPENLINE": "Y",
                "EVENT_MESSAGE_ADD": "https://sb.example/hooks/c1",
                "EVENT_WELCOME_MESSAGE": "https://sb.example/hooks/c1",
                "EVENT_BOT_DELETE": "https://sb.example/hooks/c1",
                "PROPERTIES": {"NAME": "Helper"}
            })
        );
        let command = &parse_commands(Some(r#"[{"command":"help","title":"Help","params":"topic"}]"#)).unwrap()[0];
        let call = register_command_call("55", command, "https://sb.example/hooks/c1");
        assert_eq!(call.method, "imbot.command.register");
        assert_eq!(call.params["LANG"][0], json!({"LANGUAGE_ID": "en", "TITLE": "Help", "PARAMS": "topic"}));
        assert_eq!(call.params["EVENT_COMMAND_ADD"], "https://sb.example/hooks/c1");
        assert_eq!((call.params["BOT_ID"].as_str(), call.params["EXTRANET_SUPPORT"].as_str()), (Some("55"), Some("N")));
    }

    #[test]
    fn plain_chat_bots_do_not_ask_for_open_lines() {
        let settings = settings(&[("webhook-url", "https://h"), ("bot_type", "b")]).unwrap();
        assert!(!register_bot_call(&settings).params.contains_key("OPENLINE"));
    }

    #[test]
    fn credentials_from_arguments_or_the_installation() {
        let direct = credentials_from_args(&args(&[("client_endpoint", "https://p/rest/"), ("access_token", "t")]), |_| unreachable!());
        assert_eq!(direct.unwrap().access_token, "t");
        let record = Installation {
            client_endpoint: "https://p/rest/".into(),
            access_token: "installed".into(),
            refresh_token: "installed-refresh".into(),
            expires: "1771932585".into(),
            ..Default::default()
        };
        let stored = credentials_from_args(&args(&[("member_id", "m1")]), |id| {
            assert_eq!(id, "m1");
            Ok(Some(record))
        })
        .unwrap();
        assert_eq!(stored.access_token, "installed");
        assert_eq!(
            (stored.member_id.as_str(), stored.refresh_token.as_str(), stored.expires),
            ("m1", "installed-refresh", 1_771_932_585),
            "refreshable when the token expired"
        );
        let unknown = credentials_from_args(&args(&[("member_id", "m2")]), |_| Ok(None)).unwrap_err();
        assert_eq!(unknown.kind, ErrorKind::Config);
        assert!(credentials_from_args(&args(&[]), |_| Ok(None)).is_err());
    }

    #[test]
    fn reads_ids_from_results() {
        assert_eq!(id_from_result(BOT_REGISTER, &json!(55)).unwrap(), "55");
        assert_eq!(id_from_result(BOT_REGISTER, &json!("56")).unwrap(), "56");
        assert!(id_from_result(BOT_REGISTER, &json!(false)).is_err());
    }
}
