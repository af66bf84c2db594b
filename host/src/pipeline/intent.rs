//! What the user's message asks for, given the conversation's state.

use crate::config::RoutingConfig;
use crate::conversation::Mode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Ask the bot.
    Ask,
    /// Pass to the human operator.
    Relay,
    /// Start a handoff.
    Handoff,
    /// Return to the bot.
    Return,
    /// Forget the conversation.
    Reset,
}

impl Intent {
    pub fn of(text: &str, routing: &RoutingConfig, mode: Mode) -> Self {
        let says = |keyword: &str| !keyword.trim().is_empty() && text.trim().eq_ignore_ascii_case(keyword.trim());
        match mode {
            _ if says(&routing.reset_keyword) => Intent::Reset,
            Mode::Bot | Mode::Platform if says(&routing.handoff_command) => Intent::Handoff,
            Mode::Bot | Mode::Platform => Intent::Ask,
            Mode::Human if says(&routing.return_command) => Intent::Return,
            Mode::Human => Intent::Relay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_match_whole_messages_in_the_right_state() {
        let routing = RoutingConfig::default();
        assert_eq!(Intent::of(" /Operator ", &routing, Mode::Bot), Intent::Handoff);
        assert_eq!(Intent::of("/operator please", &routing, Mode::Bot), Intent::Ask);
        assert_eq!(Intent::of("/operator", &routing, Mode::Human), Intent::Relay);
        assert_eq!(Intent::of("/bot", &routing, Mode::Human), Intent::Return);
        assert_eq!(Intent::of("/bot", &routing, Mode::Bot), Intent::Ask);
        assert_eq!(Intent::of("/reset", &routing, Mode::Human), Intent::Reset);
        assert_eq!(Intent::of("hello", &routing, Mode::Human), Intent::Relay);
        let disabled = RoutingConfig { handoff_command: String::new(), ..RoutingConfig::default() };
        assert_eq!(Intent::of("", &disabled, Mode::Bot), Intent::Ask);
    }
}
