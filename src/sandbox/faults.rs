//! Fault switches: what the sandbox does wrong on purpose, so tests can see
//! how a client copes with expired tokens, 5xx, stalls and broken bodies.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which gateway call a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// Every gateway call.
    #[default]
    Any,
    /// `GET /cgi-bin/token`.
    Token,
    /// `POST /pay/genprepay`.
    Genprepay,
    /// Every API v2 call.
    V2,
    /// Every API v3 call.
    V3,
}

impl Endpoint {
    fn matches(self, call: Endpoint) -> bool {
        self == Endpoint::Any || self == call
    }
}

/// What a faulty answer looks like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer with this HTTP status and an empty body.
    Status(u16),
    /// Answer 200 with a body that is not valid JSON.
    MalformedJson,
    /// Answer 200 with `{"errcode": errcode, "errmsg": errmsg}`.
    Errcode {
        /// The errcode to answer.
        errcode: i64,
        /// The errmsg to answer.
        #[serde(default)]
        errmsg: String,
    },
    /// Wait this many milliseconds, then answer normally.
    DelayMs(u64),
    /// Answer 200 with this body as it is (e.g. HTML from a proxy).
    Body(String),
    /// Answer 200 with a valid-looking JSON body sent one byte every this
    /// many milliseconds (a peer that dribbles: only a total timeout stops it).
    DribbleMs(u64),
}

/// A fault for the next `count` calls to `endpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Which calls.
    #[serde(default)]
    pub endpoint: Endpoint,
    /// What to do.
    pub action: FaultAction,
    /// How many calls (then the rule is spent).
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// The armed faults, consumed in order.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Vec<FaultRule>,
    /// A delay applied to every call, on top of any rule.
    pub(super) delay: Duration,
}

impl Faults {
    /// Arms `rule` behind the ones already armed.
    pub fn push(&mut self, rule: FaultRule) {
        if rule.count > 0 {
            self.rules.push(rule);
        }
    }

    /// Disarms everything.
    pub fn clear(&mut self) {
        self.rules.clear();
        self.delay = Duration::ZERO;
    }

    /// Takes the action for one call to `call`, if a rule applies.
    pub fn take(&mut self, call: Endpoint) -> Option<FaultAction> {
        let index = self.rules.iter().position(|r| r.endpoint.matches(call))?;
        let rule = &mut self.rules[index];
        rule.count -= 1;
        let action = rule.action.clone();
        if rule.count == 0 {
            self.rules.remove(index);
        }
        Some(action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_spent_in_order_and_per_endpoint() {
        let mut faults = Faults::default();
        faults.push(FaultRule {
            endpoint: Endpoint::Genprepay,
            action: FaultAction::Errcode {
                errcode: 40001,
                errmsg: String::new(),
            },
            count: 2,
        });
        faults.push(FaultRule {
            endpoint: Endpoint::Any,
            action: FaultAction::Status(503),
            count: 1,
        });
        assert_eq!(faults.take(Endpoint::Token), Some(FaultAction::Status(503)));
        assert!(matches!(
            faults.take(Endpoint::Genprepay),
            Some(FaultAction::Errcode { errcode: 40001, .. })
        ));
        assert!(matches!(
            faults.take(Endpoint::Genprepay),
            Some(FaultAction::Errcode { errcode: 40001, .. })
        ));
        assert_eq!(faults.take(Endpoint::Genprepay), None);
        assert_eq!(faults.take(Endpoint::Token), None);
    }

    #[test]
    fn rules_parse_from_json() {
        let rule: FaultRule = serde_json::from_str(
            r#"{"endpoint":"token","action":{"errcode":{"errcode":45009}},"count":3}"#,
        )
        .expect("json");
        assert_eq!(rule.endpoint, Endpoint::Token);
        assert_eq!(rule.count, 3);
        let rule: FaultRule = serde_json::from_str(r#"{"action":{"status":502}}"#).expect("json");
        assert_eq!(
            rule,
            FaultRule {
                endpoint: Endpoint::Any,
                action: FaultAction::Status(502),
                count: 1
            }
        );
        let rule: FaultRule = serde_json::from_str(r#"{"action":"malformed_json"}"#).expect("json");
        assert_eq!(rule.action, FaultAction::MalformedJson);
    }
}
