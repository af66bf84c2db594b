//! # Bitrix24 channel plugin
//!
//! Connects Bitrix24 chat bots (the `imbot` REST API, as BitBot uses it) to
//! any Switchboard provider:
//!
//! * `translate-in` verifies each event's `application_token`, records
//!   portals on ONAPPINSTALL and turns ONIMBOTMESSAGEADD / ONIMCOMMANDADD
//!   into messages carrying BitBot's variables; ONIMBOTJOINCHAT can send a
//!   welcome text.
//! * `translate-out` converts Markdown to BBCode and calls
//!   `imbot.message.add` or `imbot.command.answer`, refreshing an expired
//!   access token once (with `client_id`/`client_secret`).
//! * `run-action register-bot` registers the bot and its commands.
//!
//! This file holds the host-facing edges (config, state, logging, HTTP);
//! the modules below are pure and unit-tested natively.

pub mod bbcode;
pub mod event;
pub mod host_io;
pub mod inbound;
pub mod installation;
pub mod oauth;
pub mod outbound;
pub mod plain_text;
pub mod reply_context;
pub mod rest;
pub mod session;
pub mod setup;
pub mod variables;
pub mod verify;

#[cfg(test)]
mod test_events;

use event::{EventView, first_non_empty};
use inbound::{NoteLevel, Settings};
use installation::Installation;
use reply_context::ReplyContext;
use serde_json::Value;
use switchboard_sdk::prelude::*;

/// The Bitrix24 channel.
pub struct Bitrix24;

impl Channel for Bitrix24 {
    fn translate_in(request: HttpRequest) -> Result<Translated, RequestError> {
        let tree = decode_body(&request)?;
        let view = EventView::new(&tree);
        let event = view.name().ok_or_else(|| {
            RequestError::BadRequest(
                "missing `event` field: expected a Bitrix24 event posted as application/x-www-form-urlencoded \
                 (event=ONIMBOTMESSAGEADD&data[...]...)"
                    .into(),
            )
        })?;
        let installed = view.member_id().and_then(|member_id| load_installation(&member_id));
        let configured_token = config::get("application_token");
        match event.as_str() {
            "ONAPPINSTALL" => record_installation(&view, &request.path_with_query, configured_token.as_deref()),
            "ONAPPUNINSTALL" => forget_installation(&view, installed.as_ref(), configured_token.as_deref()),
            _ => {
                verify::check_event_token(
                    view.application_token().as_deref(),
                    configured_token.as_deref(),
                    installed.as_ref().map(|record| record.application_token.as_str()),
                )?;
                let settings = Settings { welcome_message: config::get("welcome_message") };
                let outcome = inbound::translate_event(&view, installed.as_ref(), &settings)?;
                if let Some((level, note)) = outcome.note {
                    write_note(level, &note);
                }
                Ok(outcome.translated)
            }
        }
    }

    fn translate_out(reply: AddressedReply) -> Result<(), PluginError> {
        let context = ReplyContext::from_json(&reply.conversation.reply_context)?;
        let settings = outbound::DeliverySettings {
            buttons_text: config::get_or("buttons_text", outbound::DEFAULT_BUTTONS_TEXT),
            staff_dialog_id: config::get("staff_dialog_id"),
        };
        let plan = outbound::plan_delivery(&reply, &context, &settings);
        for note in &plan.notes {
            log::debug(note);
        }
        if plan.calls.is_empty() {
            return Ok(());
        }
        let mut session = host_io::session(context.portal(&reply.conversation.id));
        for call in &plan.calls {
            session.call(call)?;
        }
        Ok(())
    }

    fn run_action(name: String, args: Pairs) -> Result<String, PluginError> {
        match name.as_str() {
            setup::REGISTER_BOT => setup::register_bot(&args),
            other => Err(PluginError::permanent(format!("unknown action `{other}`; the Bitrix24 plugin knows: {}", setup::REGISTER_BOT))),
        }
    }
}

switchboard_sdk::export_channel!(Bitrix24);
switchboard_sdk::manifest!(concat!(
    r#"{
    "name": "bitrix24",
    "version": ""#,
    env!("CARGO_PKG_VERSION"),
    r#"",
    "kind": "channel",
    "contract": "0.1.0",
    "outbound_hosts": ["https://oauth.bitrix.info"],
    "outbound_host_settings": ["portal_url", "oauth_url"],
    "secret_variables": ["access_token", "user_access_token", "bot_access_token"],
    "settings": [
        {"name": "application_token", "required": false, "secret": true, "description": "the token Bitrix24 sends as auth[application_token]"},
        {"name": "install_secret", "required": false, "secret": true, "description": "proves ONAPPINSTALL when ?install_secret= is in the handler URL"},
        {"name": "client_id", "required": false, "secret": false, "description": "the application's OAuth client_id"},
        {"name": "client_secret", "required": false, "secret": true, "description": "the application's OAuth client_secret"},
        {"name": "oauth_url", "required": false, "secret": false, "description": "Bitrix24's OAuth server"},
        {"name": "portal_url", "required": false, "secret": false, "description": "the portal's REST endpoint"},
        {"name": "welcome_message", "required": false, "secret": false, "description": "sent when the bot joins a chat"}
    ]
}"#
));

/// Bitrix24 posts PHP-style forms; a JSON body is accepted too (handy for
/// manual tests).
fn decode_body(request: &HttpRequest) -> Result<Value, RequestError> {
    let is_json = request.headers.iter().any(|(name, value)| name == "content-type" && value.contains("json"));
    if !is_json {
        return form::try_decode_nested(&request.body).map_err(|e| RequestError::BadRequest(e.to_string()));
    }
    serde_json::from_slice(&request.body).map_err(|e| RequestError::BadRequest(format!("body is not valid JSON: {e}")))
}

/// The portal's installation record; a state failure is logged and read
/// as "no record" (verification then relies on the configured token).
fn load_installation(member_id: &str) -> Option<Installation> {
    state::get_json(&installation::state_key(member_id)).unwrap_or_else(|error| {
        log::error(format!("cannot read the Bitrix24 installation of {member_id}: {}", error.message));
        None
    })
}

fn record_installation(view: &EventView, path_with_query: &str, configured_token: Option<&str>) -> Result<Translated, RequestError> {
    let mut record = Installation::from_event(view)?;
    let install_secret = config::get("install_secret").filter(|secret| !secret.is_empty());
    let oauth_client = oauth::OAuthClient::from_settings(config::get);
    let check = verify::InstallCheck::choose(configured_token.is_some(), install_secret.is_some(), oauth_client.is_some())?;
    let mut verified_tokens = None;
    match (check, configured_token, install_secret, oauth_client) {
        (verify::InstallCheck::ConfiguredToken, Some(token), _, _) => verify::check_install_token(&record.application_token, token)?,
        (verify::InstallCheck::InstallSecret, _, Some(secret), _) => verify::check_install_secret(path_with_query, &secret)?,
        (verify::InstallCheck::OAuth, _, _, Some(client)) => {
            let tokens = confirm_with_oauth_server(&client, &record)?;
            record.client_endpoint = first_non_empty([tokens.client_endpoint.clone(), record.client_endpoint]);
            verified_tokens = Some(tokens);
        }
        _ => unreachable!("InstallCheck::choose picks a configured check"),
    }
    let key = installation::state_key(&record.member_id);
    state::set_json(&key, &record, Some(installation::RECORD_TTL)).map_err(|error| {
        log::error(format!("cannot record the Bitrix24 installation: {}", error.message));
        RequestError::BadRequest("the installation could not be recorded (state store failed); install again".into())
    })?;
    match verified_tokens {
        // The exchange used up the install's refresh token: keep the new one.
        Some(tokens) => save_tokens(&record.member_id, &tokens),
        // Tokens refreshed for an earlier installation are no longer valid.
        None => forget_tokens(&record.member_id),
    }
    log::info(format!("Bitrix24 application installed on {} ({}), verified by {check:?}", record.domain, record.member_id));
    Ok(Translated::ignored())
}

/// Exchange the install's refresh token at Bitrix24's OAuth server: only a
/// genuine install of this application on the named portal has one the
/// server accepts with our client credentials for that portal.
fn confirm_with_oauth_server(client: &oauth::OAuthClient, record: &Installation) -> Result<oauth::PortalTokens, RequestError> {
    if record.refresh_token.is_empty() {
        return Err(RequestError::Forbidden("ONAPPINSTALL without auth[refresh_token] cannot be confirmed with the OAuth server".into()));
    }
    let tokens = oauth::exchange(client, &record.refresh_token, rest::unix_now(), INSTALL_CHECK_TIMEOUT).map_err(|failure| {
        log::warn(format!("could not confirm an ONAPPINSTALL of {} with the OAuth server: {}", record.member_id, failure.error.message));
        RequestError::Forbidden("the OAuth server did not confirm the installation".into())
    })?;
    verify::check_oauth_member(&record.member_id, &tokens.member_id)?;
    Ok(tokens)
}

/// The OAuth check runs while Bitrix24 waits (inside `translate-in`'s deadline).
const INSTALL_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(2500);

fn save_tokens(member_id: &str, tokens: &oauth::PortalTokens) {
    if let Err(error) = state::set_json(&oauth::tokens_key(member_id), tokens, Some(oauth::TOKENS_TTL)) {
        log::warn(format!("cannot keep the Bitrix24 tokens of {member_id}: {}", error.message));
    }
}

fn forget_installation(view: &EventView, existing: Option<&Installation>, configured_token: Option<&str>) -> Result<Translated, RequestError> {
    verify::check_event_token(view.application_token().as_deref(), configured_token, existing.map(|record| record.application_token.as_str()))?;
    if let Some(member_id) = view.member_id() {
        if let Err(error) = state::delete(&installation::state_key(&member_id)) {
            log::warn(format!("cannot forget the Bitrix24 installation of {member_id}: {}", error.message));
        }
        forget_tokens(&member_id);
        log::info(format!("Bitrix24 application uninstalled from {member_id}"));
    }
    Ok(Translated::ignored())
}

/// Drop the refreshed tokens of a portal (state failures are only logged).
fn forget_tokens(member_id: &str) {
    if let Err(error) = state::delete(&oauth::tokens_key(member_id)) {
        log::warn(format!("cannot forget the refreshed Bitrix24 tokens of {member_id}: {}", error.message));
    }
}

fn write_note(level: NoteLevel, note: &str) {
    match level {
        NoteLevel::Debug => log::debug(note),
        NoteLevel::Info => log::info(note),
    }
}
