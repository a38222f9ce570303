//! Folding a long stream of events into rollups, fast.
//!
//! Most events of a usage log repeat the previous event of their token in everything but
//! the time and the bytes: they are the heartbeats of one session. [`Folder`] keeps, per
//! token, the fields of its latest event and collects the events that repeat them; when a
//! token's next event differs, the collected ones go into its [`TokenActivity`] at once
//! ([`TokenActivity::add_batch`]). A repeated event therefore costs one comparison of its
//! fields instead of a lookup in each of the rollup's maps.
//!
//! Exactness: a batch holds consecutive events of one token, and nothing else touches
//! that token's rollup between them, so folding the batch in gives what adding each event
//! in order gives, including which keys a full map ([`super::MAX_DISTINCT`]) keeps and how
//! many events it counts as overflow. [`Folder::finish`] equals an [`Aggregator`] fed the
//! same events with [`Aggregator::add_view`].

use std::collections::HashMap;

use super::activity::{Aggregator, Batch, EventView, Runs, Timing, TokenActivity};

/// An `Option<String>` that keeps its buffer when it becomes `None`.
#[derive(Debug, Default)]
struct Text {
    present: bool,
    text: String,
}

impl Text {
    fn get(&self) -> Option<&str> {
        self.present.then_some(self.text.as_str())
    }

    fn set(&mut self, value: Option<&str>) {
        self.text.clear();
        self.present = value.is_some();
        if let Some(value) = value {
            self.text.push_str(value);
        }
    }

    fn is(&self, value: Option<&str>) -> bool {
        match value {
            Some(value) => self.present && self.text == value,
            None => !self.present,
        }
    }
}

/// Every field of an event but `token`, `at` and `bytes`.
#[derive(Debug, Default)]
struct Shape {
    sid: String,
    ip: Text,
    country: Text,
    asn: Option<u32>,
    as_organization: Text,
    referer: Text,
    user_agent: Text,
    stream: Text,
    sub: Text,
    max_sessions: Option<u32>,
}

impl Shape {
    /// Whether `event` has these fields; the ones most likely to differ come first.
    fn matches(&self, event: &EventView<'_>) -> bool {
        self.sid == event.sid
            && self.ip.is(event.ip)
            && self.asn == event.asn
            && self.max_sessions == event.max_sessions
            && self.country.is(event.country)
            && self.stream.is(event.stream)
            && self.referer.is(event.referer)
            && self.sub.is(event.sub)
            && self.as_organization.is(event.as_organization)
            && self.user_agent.is(event.user_agent)
    }

    fn set(&mut self, event: &EventView<'_>) {
        self.sid.clear();
        self.sid.push_str(event.sid);
        self.ip.set(event.ip);
        self.country.set(event.country);
        self.asn = event.asn;
        self.as_organization.set(event.as_organization);
        self.referer.set(event.referer);
        self.user_agent.set(event.user_agent);
        self.stream.set(event.stream);
        self.sub.set(event.sub);
        self.max_sessions = event.max_sessions;
    }

    fn view<'a>(&'a self, token: &'a str) -> EventView<'a> {
        EventView {
            at: 0,
            token,
            sid: &self.sid,
            ip: self.ip.get(),
            country: self.country.get(),
            asn: self.asn,
            as_organization: self.as_organization.get(),
            referer: self.referer.get(),
            user_agent: self.user_agent.get(),
            stream: self.stream.get(),
            bytes: None,
            sub: self.sub.get(),
            max_sessions: self.max_sessions,
        }
    }
}

/// The events collected for one token and not yet folded in.
#[derive(Debug, Default)]
struct Pending {
    shape: Shape,
    events: u64,
    bytes: u64,
    first: i64,
    last: i64,
    sessions: Runs,
    countries: Runs,
}

impl Pending {
    fn start(&mut self, event: &EventView<'_>, timing: Timing) {
        self.shape.set(event);
        self.events = 0;
        self.bytes = 0;
        self.first = event.at;
        self.last = event.at;
        self.sessions.clear();
        self.countries.clear();
        self.push(event, timing);
    }

    fn push(&mut self, event: &EventView<'_>, timing: Timing) {
        let at = event.at;
        self.events = self.events.saturating_add(1);
        self.bytes = self.bytes.saturating_add(event.bytes.unwrap_or(0));
        self.first = self.first.min(at);
        self.last = self.last.max(at);
        self.sessions.add(at, timing.idle_seconds);
        if self.shape.country.present {
            self.countries.add(at, timing.country_window_seconds);
        }
    }
}

#[derive(Debug)]
struct Slot {
    token: String,
    activity: TokenActivity,
    pending: Pending,
}

impl Slot {
    fn flush(&mut self, timing: Timing) {
        let pending = &mut self.pending;
        if pending.events == 0 {
            return;
        }
        let batch = Batch {
            events: pending.events,
            bytes: pending.bytes,
            first: pending.first,
            last: pending.last,
            session_runs: pending.sessions.as_slice(),
            country_runs: pending.countries.as_slice(),
        };
        self.activity.add_batch(&pending.shape.view(&self.token), &batch, timing);
        pending.events = 0;
    }
}

/// Folds events into per-token rollups like [`Aggregator::add_view`], faster on the
/// repetitive streams usage logs are (see the module documentation);
/// [`Folder::finish`] hands over the [`Aggregator`].
#[derive(Debug)]
pub struct Folder {
    timing: Timing,
    slots: Vec<Slot>,
    index: HashMap<String, usize>,
    /// The slot of the previous event's token.
    last: usize,
}

impl Folder {
    /// An empty folder whose rollups are built with `timing`.
    pub fn new(timing: Timing) -> Folder {
        Folder { timing, slots: Vec::new(), index: HashMap::new(), last: 0 }
    }

    /// Folds one borrowed event in; allocates only for tokens and values it has not seen.
    pub fn add(&mut self, event: &EventView<'_>) {
        let timing = self.timing;
        let Some(slot) = self.slot(event.token) else { return };
        if slot.pending.events > 0 && slot.pending.shape.matches(event) {
            slot.pending.push(event, timing);
        } else {
            slot.flush(timing);
            slot.pending.start(event, timing);
        }
    }

    /// Tokens seen.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no event was added.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The rollups of every event added.
    pub fn finish(self) -> Aggregator {
        let timing = self.timing;
        let tokens = self.slots.into_iter().map(|mut slot| {
            slot.flush(timing);
            (slot.token, slot.activity)
        });
        Aggregator::from_tokens(timing, tokens.collect())
    }

    fn slot(&mut self, token: &str) -> Option<&mut Slot> {
        if self.slots.get(self.last).is_none_or(|slot| slot.token != token) {
            self.last = match self.index.get(token) {
                Some(&index) => index,
                None => {
                    let index = self.slots.len();
                    let activity = TokenActivity::default();
                    self.slots.push(Slot { token: token.to_owned(), activity, pending: Pending::default() });
                    self.index.insert(token.to_owned(), index);
                    index
                }
            };
        }
        self.slots.get_mut(self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::UsageEvent;

    fn event(token: &str, sid: &str, at: i64, ip: &str) -> UsageEvent {
        UsageEvent {
            at,
            token: token.into(),
            sid: sid.into(),
            ip: Some(ip.into()),
            country: Some("DE".into()),
            bytes: Some(10),
            ..UsageEvent::default()
        }
    }

    fn both(events: &[UsageEvent]) -> (Aggregator, Aggregator) {
        let timing = Timing::default();
        let mut one_by_one = Aggregator::new(timing);
        let mut folder = Folder::new(timing);
        for event in events {
            one_by_one.add(event);
            folder.add(&event.view());
        }
        (folder.finish(), one_by_one)
    }

    #[test]
    fn batches_equal_one_event_at_a_time() {
        // Interleaved tokens, times out of order, a session idle past the gap, a country
        // coming back after the country window, a field going missing.
        let mut events = Vec::new();
        for (n, at) in [0, 30, 10, 500, 90, 5000, 5030, 20].into_iter().enumerate() {
            events.push(event("a", "s1", at, "192.0.2.1"));
            events.push(event(if n % 3 == 0 { "b" } else { "c" }, "s2", at * 2, "2001:db8::1"));
        }
        events.push(UsageEvent { ip: None, country: None, bytes: None, ..event("a", "s1", 40, "") });
        events.push(event("a", "s1", 45, "192.0.2.1"));
        let (folded, expected) = both(&events);
        assert_eq!(folded, expected);
        assert_eq!(folded.len(), 3);
    }

    #[test]
    fn a_full_map_counts_the_same_overflow() {
        let mut events = Vec::new();
        for n in 0..super::super::MAX_DISTINCT + 50 {
            let sid = format!("s{n}");
            events.push(event("t", &sid, n as i64, "192.0.2.1"));
            events.push(event("t", &sid, n as i64 + 1, "192.0.2.1"));
        }
        let (folded, expected) = both(&events);
        assert!(expected.get("t").is_some_and(|t| t.overflow_events == 100));
        assert_eq!(folded, expected);
    }
}
