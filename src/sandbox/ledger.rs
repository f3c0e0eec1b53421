//! The sandbox's books, shared by the 2014, API v2 and API v3 gateways: the
//! orders each generation accepted (by generation and merchant trade number),
//! their refunds, and a record of every notification sent. The payment state
//! machine is written here once:
//!
//! ```text
//! NOTPAY ──pay──▶ SUCCESS ──refund──▶ REFUND ──refund──▶ REFUND …
//!    │               (pay again: the same notification again)
//!    └──close──▶ CLOSED
//! ```
//!
//! A paid order neither closes nor opens again; refunds never exceed the
//! amount; a retried order (same terms) or refund (same number and amount)
//! is answered again rather than counted twice. The ledger knows no protocol:
//! a gateway turns its request into one ledger operation and the outcome, or
//! the [`Refusal`], into its own answer. Each operation takes the ledger's
//! lock once, so it is atomic; the lock is held by no one while a gateway
//! checks or makes a signature.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use crate::crypto::sign::Fields;
use crate::model::{OrderRef, RefundRequest, RefundStatus, TradeState};
use crate::util::clock::beijing_timestamp;
use crate::util::nonce::{NonceSource, RandomNonce};

/// The protocol an order came through. Each has its own order numbers: the
/// same `out_trade_no` may stand for one order in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Generation {
    /// The 2014 APP flow (`/pay/genprepay`).
    Legacy,
    /// API v2 (XML).
    V2,
    /// API v3 (JSON).
    V3,
}

impl Generation {
    fn index(self) -> usize {
        match self {
            Generation::Legacy => 0,
            Generation::V2 => 1,
            Generation::V3 => 2,
        }
    }

    /// A new prepay id, in the generation's format.
    fn prepay_id(self, now: u64) -> String {
        let nonce = RandomNonce.nonce();
        match self {
            Generation::Legacy => {
                format!(
                    "1101000000{}{}",
                    &beijing_timestamp(now)[2..8],
                    &nonce[..16]
                )
            }
            Generation::V2 | Generation::V3 => {
                format!("wx{}{}", beijing_timestamp(now), &nonce[..20])
            }
        }
    }

    /// A new refund id, in the generation's format.
    fn refund_id(self, now: u64) -> String {
        let date = &beijing_timestamp(now)[..8];
        let nonce = RandomNonce.nonce();
        match self {
            Generation::V3 => format!("50300{date}{}", &nonce[..15]),
            Generation::Legacy | Generation::V2 => format!("5000{date}{}", &nonce[..17]),
        }
    }
}

/// A new transaction id (WeChat's number of a payment).
fn transaction_id(now: u64) -> String {
    format!(
        "4200{}{}",
        &beijing_timestamp(now)[..8],
        &RandomNonce.nonce()[..16]
    )
}

/// A count for each generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct PerGeneration([u64; 3]);

impl PerGeneration {
    /// The count of `generation`.
    pub(super) fn of(self, generation: Generation) -> u64 {
        self.0[generation.index()]
    }

    /// The sum over every generation.
    pub(super) fn total(self) -> u64 {
        self.0.iter().sum()
    }
}

/// An order as the ledger keeps it, whatever its generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Order {
    /// The protocol it came through.
    pub(super) generation: Generation,
    /// The merchant's trade number.
    pub(super) out_trade_no: String,
    /// The amount in fen.
    pub(super) total_fee: u32,
    /// The product description.
    pub(super) body: String,
    /// Where its notifications go.
    pub(super) notify_url: String,
    /// The request's terms as sent: a retry must repeat them, `time_start`
    /// and `time_expire` aside (a retry a second later changes those).
    pub(super) terms: Fields,
    /// The merchant's `attach`, returned in the payment notification.
    pub(super) attach: Option<String>,
    /// 2014 flow: the request's `traceid`.
    pub(super) traceid: Option<String>,
    /// API v2: created under `sandboxnew/` (signed with the simulation key).
    pub(super) simulation: bool,
    /// The prepay id issued.
    pub(super) prepay_id: String,
    /// The order's state.
    pub(super) state: TradeState,
    /// WeChat's transaction id, once paid.
    pub(super) transaction_id: Option<String>,
    /// When it was paid (Unix seconds).
    pub(super) paid_at: Option<u64>,
    /// Its refunds, oldest first.
    pub(super) refunds: Vec<RefundStatus>,
}

impl Order {
    /// A new, unpaid order; [`Ledger::open`] gives it its prepay id.
    pub(super) fn new(
        generation: Generation,
        out_trade_no: &str,
        total_fee: u32,
        body: &str,
        notify_url: &str,
        terms: Fields,
    ) -> Order {
        Order {
            generation,
            out_trade_no: out_trade_no.to_owned(),
            total_fee,
            body: body.to_owned(),
            notify_url: notify_url.to_owned(),
            terms,
            attach: None,
            traceid: None,
            simulation: false,
            prepay_id: String::new(),
            state: TradeState::Notpay,
            transaction_id: None,
            paid_at: None,
            refunds: Vec::new(),
        }
    }

    /// The amount refunded so far, in fen.
    pub(super) fn refunded(&self) -> u32 {
        self.refunds.iter().map(|r| r.refund_fee).sum()
    }

    /// True when `other` orders the same thing.
    fn same_terms(&self, other: &Order) -> bool {
        let terms = |o: &Order| -> Vec<(String, String)> {
            o.terms
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "time_start" | "time_expire"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        terms(self) == terms(other)
    }
}

/// Why the ledger refused an operation; each gateway answers it in its own
/// protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    /// No such order.
    NotFound,
    /// The order is paid: it cannot be created again or closed.
    Paid,
    /// The order is closed: it cannot be created again.
    Closed,
    /// The trade number was used with other terms.
    Conflict,
    /// The order is in a state that cannot be paid.
    NotPayable(TradeState),
    /// A refund of an order that is not paid.
    NotPaid,
    /// A refund whose total is not the order's amount.
    WrongTotal,
    /// A refund number used again with another amount.
    RefundNumberReused,
    /// A refund larger than what is left of the order.
    NotEnough,
}

/// A refund the ledger made or found again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refunded {
    /// The order after the refund.
    pub(super) order: Order,
    /// The refund.
    pub(super) refund: RefundStatus,
    /// True when the refund was made now, false for a retry answered again.
    pub(super) new: bool,
}

/// What happened to one notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRecord {
    /// `payment` or `refund`.
    pub kind: String,
    /// The order's trade number.
    pub out_trade_no: String,
    /// Where it was sent.
    pub url: String,
    /// How many times it was sent so far.
    pub attempts: u32,
    /// True once the merchant answered with the success reply.
    pub acknowledged: bool,
}

/// The ledger's counts, for the sandbox's stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counts {
    /// Orders, by generation.
    pub(super) orders: PerGeneration,
    /// Refunds, by generation.
    pub(super) refunds: PerGeneration,
    /// Orders refused because their number was used with other terms.
    pub(super) conflicts: u64,
    /// Notification deliveries attempted.
    pub(super) notifications_sent: u64,
    /// Notifications acknowledged.
    pub(super) notifications_acknowledged: u64,
}

#[derive(Debug, Default)]
struct Books {
    /// Every order, oldest first.
    orders: Vec<Order>,
    /// For each generation, `out_trade_no` to the order's index.
    by_trade_no: [HashMap<String, usize>; 3],
    /// For each generation, `transaction_id` to the order's index.
    by_transaction: [HashMap<String, usize>; 3],
    conflicts: u64,
    /// The notifications, each under an id that outlives a reset.
    notifications: Vec<(u64, NotificationRecord)>,
    next_notification: u64,
    notifications_sent: u64,
}

impl Books {
    fn index(&self, generation: Generation, reference: &OrderRef) -> Option<usize> {
        let map = match reference {
            OrderRef::OutTradeNo(_) => &self.by_trade_no,
            OrderRef::TransactionId(_) => &self.by_transaction,
        };
        map[generation.index()].get(reference.field().1).copied()
    }

    fn order_mut(
        &mut self,
        generation: Generation,
        reference: &OrderRef,
    ) -> Result<&mut Order, Refusal> {
        let i = self.index(generation, reference).ok_or(Refusal::NotFound)?;
        Ok(&mut self.orders[i])
    }

    fn notification(&mut self, id: u64) -> Option<&mut NotificationRecord> {
        let i = self
            .notifications
            .binary_search_by_key(&id, |(id, _)| *id)
            .ok()?;
        Some(&mut self.notifications[i].1)
    }
}

/// The orders, refunds and notifications of every generation.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    books: Mutex<Books>,
}

impl Ledger {
    fn books(&self) -> MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens `order` as NOTPAY with a new prepay id, or, when its number is
    /// taken, finds the order a retry with the same terms repeats.
    pub(super) fn open(&self, mut order: Order, now: u64) -> Result<Order, Refusal> {
        let mut books = self.books();
        let generation = order.generation;
        let reference = OrderRef::OutTradeNo(order.out_trade_no.clone());
        if let Some(i) = books.index(generation, &reference) {
            let seen = &books.orders[i];
            let refusal = match seen.state {
                TradeState::Success | TradeState::Refund => Refusal::Paid,
                TradeState::Closed => Refusal::Closed,
                _ if seen.same_terms(&order) => return Ok(seen.clone()),
                _ => Refusal::Conflict,
            };
            if refusal == Refusal::Conflict {
                books.conflicts += 1;
            }
            return Err(refusal);
        }
        order.prepay_id = generation.prepay_id(now);
        order.state = TradeState::Notpay;
        let index = books.orders.len();
        books.by_trade_no[generation.index()].insert(order.out_trade_no.clone(), index);
        books.orders.push(order.clone());
        Ok(order)
    }

    /// The order `reference` names.
    pub(super) fn find(&self, generation: Generation, reference: &OrderRef) -> Option<Order> {
        let books = self.books();
        let i = books.index(generation, reference)?;
        Some(books.orders[i].clone())
    }

    /// Closes an unpaid order (closing a closed one again is no error).
    pub(super) fn close(
        &self,
        generation: Generation,
        reference: &OrderRef,
    ) -> Result<(), Refusal> {
        let mut books = self.books();
        let order = books.order_mut(generation, reference)?;
        match order.state {
            TradeState::Success | TradeState::Refund => Err(Refusal::Paid),
            _ => {
                order.state = TradeState::Closed;
                Ok(())
            }
        }
    }

    /// The user pays `out_trade_no`: an unpaid order becomes SUCCESS with a
    /// transaction id; a paid one stays as it is (its notification is sent
    /// again). The order as paid.
    pub(super) fn pay(
        &self,
        generation: Generation,
        out_trade_no: &str,
        now: u64,
    ) -> Result<Order, Refusal> {
        let mut books = self.books();
        let reference = OrderRef::OutTradeNo(out_trade_no.to_owned());
        let index = books
            .index(generation, &reference)
            .ok_or(Refusal::NotFound)?;
        let order = &mut books.orders[index];
        match order.state {
            TradeState::Notpay | TradeState::Userpaying => {
                let id = transaction_id(now);
                order.state = TradeState::Success;
                order.transaction_id = Some(id.clone());
                order.paid_at = Some(now);
                books.by_transaction[generation.index()].insert(id, index);
            }
            TradeState::Success | TradeState::Refund => {}
            ref other => return Err(Refusal::NotPayable(other.clone())),
        }
        Ok(books.orders[index].clone())
    }

    /// Refunds `request.refund_fee` of a paid order (settled at once: the
    /// refund is SUCCESS and the order REFUND), or finds the refund a retry
    /// repeats.
    pub(super) fn refund(
        &self,
        generation: Generation,
        request: &RefundRequest,
        now: u64,
    ) -> Result<Refunded, Refusal> {
        let mut books = self.books();
        let order = books.order_mut(generation, &request.order)?;
        if !matches!(order.state, TradeState::Success | TradeState::Refund) {
            return Err(Refusal::NotPaid);
        }
        if request.total_fee != order.total_fee {
            return Err(Refusal::WrongTotal);
        }
        if let Some(seen) = order
            .refunds
            .iter()
            .find(|r| r.out_refund_no == request.out_refund_no)
        {
            if seen.refund_fee != request.refund_fee {
                return Err(Refusal::RefundNumberReused);
            }
            return Ok(Refunded {
                refund: seen.clone(),
                order: order.clone(),
                new: false,
            });
        }
        if request.refund_fee > order.total_fee - order.refunded() {
            return Err(Refusal::NotEnough);
        }
        let refund = RefundStatus {
            out_refund_no: request.out_refund_no.clone(),
            refund_id: generation.refund_id(now),
            refund_fee: request.refund_fee,
            refund_status: "SUCCESS".into(),
        };
        order.state = TradeState::Refund;
        order.refunds.push(refund.clone());
        Ok(Refunded {
            refund,
            order: order.clone(),
            new: true,
        })
    }

    /// The orders of `generation`, oldest first.
    pub(super) fn orders(&self, generation: Generation) -> Vec<Order> {
        self.books()
            .orders
            .iter()
            .filter(|o| o.generation == generation)
            .cloned()
            .collect()
    }

    /// Forgets every order and refund of every generation, and the count of
    /// conflicts.
    pub(super) fn clear_orders(&self) {
        let mut books = self.books();
        books.orders.clear();
        books.by_trade_no.iter_mut().for_each(HashMap::clear);
        books.by_transaction.iter_mut().for_each(HashMap::clear);
        books.conflicts = 0;
    }

    /// Records a notification about to be sent (no attempt yet); its id.
    pub(super) fn record_notification(&self, kind: &str, out_trade_no: &str, url: &str) -> u64 {
        let mut books = self.books();
        let id = books.next_notification;
        books.next_notification += 1;
        books.notifications.push((
            id,
            NotificationRecord {
                kind: kind.to_owned(),
                out_trade_no: out_trade_no.to_owned(),
                url: url.to_owned(),
                attempts: 0,
                acknowledged: false,
            },
        ));
        id
    }

    /// Counts one delivery attempt of notification `id`; false when its
    /// record was cleared, and the delivery should stop.
    pub(super) fn count_attempt(&self, id: u64) -> bool {
        let mut books = self.books();
        let Some(record) = books.notification(id) else {
            return false;
        };
        record.attempts += 1;
        books.notifications_sent += 1;
        true
    }

    /// Marks notification `id` acknowledged (if its record is still kept).
    pub(super) fn acknowledge(&self, id: u64) {
        if let Some(record) = self.books().notification(id) {
            record.acknowledged = true;
        }
    }

    /// Every notification kept, oldest first.
    pub(super) fn notifications(&self) -> Vec<NotificationRecord> {
        let books = self.books();
        books.notifications.iter().map(|(_, r)| r.clone()).collect()
    }

    /// Forgets every notification and the count of attempts; deliveries
    /// still retrying stop at their next attempt.
    pub(super) fn clear_notifications(&self) {
        let mut books = self.books();
        books.notifications.clear();
        books.notifications_sent = 0;
    }

    /// The counts for the stats.
    pub(super) fn counts(&self) -> Counts {
        let books = self.books();
        let mut counts = Counts {
            conflicts: books.conflicts,
            notifications_sent: books.notifications_sent,
            ..Counts::default()
        };
        for order in &books.orders {
            let g = order.generation.index();
            counts.orders.0[g] += 1;
            counts.refunds.0[g] += order.refunds.len() as u64;
        }
        counts.notifications_acknowledged = books
            .notifications
            .iter()
            .filter(|(_, r)| r.acknowledged)
            .count() as u64;
        counts
    }
}

/// Parses an amount in fen as the gateways require it: a positive decimal
/// integer, no leading zero, at most `i32::MAX`.
pub(super) fn positive_fen(text: &str) -> Option<u32> {
    if text.is_empty() || text.starts_with('0') || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u32>().ok().filter(|f| *f <= i32::MAX as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(generation: Generation, no: &str, fee: u32) -> Order {
        let terms: Fields = [("total_fee".to_owned(), fee.to_string())].into();
        Order::new(generation, no, fee, "b", "http://127.0.0.1/n", terms)
    }

    fn by_no(no: &str) -> OrderRef {
        OrderRef::OutTradeNo(no.into())
    }

    fn refund(no: &str, out_refund_no: &str, total_fee: u32, refund_fee: u32) -> RefundRequest {
        RefundRequest {
            order: by_no(no),
            out_refund_no: out_refund_no.into(),
            total_fee,
            refund_fee,
            refund_desc: None,
        }
    }

    #[test]
    fn retries_find_the_order_and_other_terms_conflict() {
        let ledger = Ledger::default();
        let first = ledger
            .open(order(Generation::V2, "A", 5), 0)
            .expect("opens");
        assert_eq!(first.state, TradeState::Notpay);
        assert!(first.prepay_id.starts_with("wx"), "{}", first.prepay_id);
        let mut later = order(Generation::V2, "A", 5);
        later
            .terms
            .insert("time_start".into(), "20240101000000".into());
        assert_eq!(ledger.open(later, 1).expect("a retry"), first);
        assert_eq!(
            ledger.open(order(Generation::V2, "A", 6), 1),
            Err(Refusal::Conflict)
        );
        // Each generation has its own numbers.
        let legacy = ledger
            .open(order(Generation::Legacy, "A", 6), 0)
            .expect("another generation");
        assert!(legacy.prepay_id.starts_with("1101000000"));
        let counts = ledger.counts();
        assert_eq!(counts.conflicts, 1);
        assert_eq!(counts.orders.of(Generation::V2), 1);
        assert_eq!(counts.orders.total(), 2);
    }

    #[test]
    fn payment_state_machine() {
        let ledger = Ledger::default();
        ledger
            .open(order(Generation::V3, "P", 100), 0)
            .expect("open");
        assert_eq!(
            ledger.pay(Generation::V2, "P", 0),
            Err(Refusal::NotFound),
            "a v3 number is no v2 order"
        );
        let paid = ledger.pay(Generation::V3, "P", 7).expect("pays");
        assert_eq!(paid.state, TradeState::Success);
        assert_eq!(paid.paid_at, Some(7));
        let id = paid.transaction_id.clone().expect("a transaction id");
        assert_eq!(
            ledger.find(Generation::V3, &OrderRef::TransactionId(id)),
            Some(paid.clone())
        );
        assert_eq!(ledger.pay(Generation::V3, "P", 9), Ok(paid), "paid again");
        assert_eq!(
            ledger.close(Generation::V3, &by_no("P")),
            Err(Refusal::Paid)
        );
        assert_eq!(
            ledger.open(order(Generation::V3, "P", 100), 0),
            Err(Refusal::Paid)
        );

        ledger.open(order(Generation::V3, "C", 1), 0).expect("open");
        ledger.close(Generation::V3, &by_no("C")).expect("closes");
        assert_eq!(
            ledger.pay(Generation::V3, "C", 0),
            Err(Refusal::NotPayable(TradeState::Closed))
        );
        assert_eq!(
            ledger.open(order(Generation::V3, "C", 1), 0),
            Err(Refusal::Closed)
        );
        assert_eq!(
            ledger.close(Generation::V3, &by_no("missing")),
            Err(Refusal::NotFound)
        );
    }

    #[test]
    fn refunds_never_exceed_the_amount() {
        let ledger = Ledger::default();
        ledger
            .open(order(Generation::V2, "R", 10), 0)
            .expect("open");
        assert_eq!(
            ledger.refund(Generation::V2, &refund("R", "R1", 10, 4), 0),
            Err(Refusal::NotPaid)
        );
        ledger.pay(Generation::V2, "R", 0).expect("pays");
        assert_eq!(
            ledger.refund(Generation::V2, &refund("R", "R1", 9, 4), 0),
            Err(Refusal::WrongTotal)
        );
        let first = ledger
            .refund(Generation::V2, &refund("R", "R1", 10, 4), 0)
            .expect("refunds");
        assert!(first.new);
        assert_eq!(first.order.state, TradeState::Refund);
        assert!(first.refund.refund_id.starts_with("5000"));
        let again = ledger
            .refund(Generation::V2, &refund("R", "R1", 10, 4), 5)
            .expect("a retry");
        assert!(!again.new);
        assert_eq!(again.refund, first.refund);
        assert_eq!(
            ledger.refund(Generation::V2, &refund("R", "R1", 10, 5), 0),
            Err(Refusal::RefundNumberReused)
        );
        assert_eq!(
            ledger.refund(Generation::V2, &refund("R", "R2", 10, 7), 0),
            Err(Refusal::NotEnough)
        );
        let rest = ledger
            .refund(Generation::V2, &refund("R", "R2", 10, 6), 0)
            .expect("the rest");
        assert_eq!(rest.order.refunded(), 10);
        assert_eq!(ledger.counts().refunds.of(Generation::V2), 2);
    }

    #[test]
    fn cleared_books_forget_orders_and_stop_deliveries() {
        let ledger = Ledger::default();
        ledger.open(order(Generation::V2, "A", 1), 0).expect("open");
        let id = ledger.record_notification("payment", "A", "http://127.0.0.1/");
        assert!(ledger.count_attempt(id));
        ledger.acknowledge(id);
        let counts = ledger.counts();
        assert_eq!(
            (counts.notifications_sent, counts.notifications_acknowledged),
            (1, 1)
        );

        ledger.clear_orders();
        assert_eq!(ledger.find(Generation::V2, &by_no("A")), None);
        assert_eq!(ledger.notifications().len(), 1, "notifications are kept");
        ledger.clear_notifications();
        assert!(!ledger.count_attempt(id), "a cleared delivery stops");
        let later = ledger.record_notification("payment", "B", "http://127.0.0.1/");
        assert_ne!(later, id);
        assert_eq!(ledger.counts(), Counts::default());
    }

    #[test]
    fn fen_amounts() {
        assert_eq!(positive_fen("1"), Some(1));
        assert_eq!(positive_fen("2147483647"), Some(i32::MAX as u32));
        for bad in ["", "0", "01", "-1", "1.5", "2147483648", "99999999999"] {
            assert_eq!(positive_fen(bad), None, "{bad}");
        }
    }
}
