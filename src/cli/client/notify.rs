//! `notify-test`: a test message to every channel of a severity's route (or to one
//! channel given as JSON) through the service's real notifiers; each delivery's
//! outcome, exit 1 when any failed — the check to run after rotating a token.

use serde_json::{Value, json};

use super::output::{Output, Table, cell};
use super::{Api, ClientError, EXIT_FAILED};

/// Sends the test and prints each delivery.
pub async fn notify_test(
    api: &Api,
    out: &Output,
    route: Option<&str>,
    channel: Option<&str>,
) -> Result<u8, ClientError> {
    let body = match (route, channel) {
        (Some(route), _) => json!({"route": route.to_ascii_uppercase()}),
        (None, Some(channel)) => {
            let channel: Value = serde_json::from_str(channel)
                .map_err(|e| ClientError::Usage(format!("--channel: not JSON: {e}")))?;
            json!({"channel": channel})
        }
        (None, None) => return Err(ClientError::Usage("give --route or --channel".into())),
    };
    let outcome = api.post("/internal/notify/test", Some(&body)).await?;
    let ok = outcome["ok"] == true;
    if out.json {
        out.print_json(&outcome);
    } else {
        let mut table = Table::new(&["CHANNEL", "STATUS", "ATTEMPTS", "ERROR"]);
        for delivery in outcome["deliveries"].as_array().into_iter().flatten() {
            table.row(&[
                cell(&delivery["channel"]),
                cell(&delivery["status"]),
                cell(&delivery["attempts"]),
                cell(&delivery["error"]),
            ]);
        }
        table.print(out);
    }
    Ok(if ok { 0 } else { EXIT_FAILED })
}
