//! A channel whose `translate-in` waits far past any deadline (it sleeps on
//! a host clock, holding its instance), as a tenant's slow or hostile
//! plugin would while the platform waits. The host must stop it at the
//! `translate-in` deadline and refuse the tenant's excess webhooks, while
//! other tenants keep being served.

use switchboard_sdk::prelude::*;

struct SlowChannel;

impl Channel for SlowChannel {
    fn translate_in(_request: HttpRequest) -> Result<Translated, RequestError> {
        std::thread::sleep(std::time::Duration::from_secs(60));
        Err(RequestError::BadRequest("woke up after a minute?!".into()))
    }

    fn translate_out(_reply: AddressedReply) -> Result<(), PluginError> {
        Ok(())
    }
}

switchboard_sdk::export_channel!(SlowChannel);
