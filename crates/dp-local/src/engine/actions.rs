//! Actions of an instance: the objects its activity names in `onSuccess` (it finished), `onFail` (it failed, timed
//! out or cascade-failed) or `onLateAction` (it had not ended when its `lateAfterTimeout` passed) are recorded as
//! events on the instance (`@event` in describe-objects), and an
//! `SnsAlarm`'s subject and message, with expressions evaluated (`#{node.errorMessage}` and
//! `#{node.@scheduledStartTime}` read the instance), are written to dp-local's log on stderr.
//!
//! Nothing is sent anywhere and nothing is terminated by an action: SnsAlarm messages are logged, Terminate is recorded.

use super::*;

/// Expressions of an action resolve what the action object itself lacks on the instance that triggered it, so
/// `#{node.errorMessage}` (the expression language drops `node.`) reads the failed instance's error.
struct ActionContext<'a> {
    run: RunContext<'a>,
    action: &'a str,
    node: &'a str,
}

impl Context for ActionContext<'_> {
    fn field(&self, object: &str, key: &str) -> Option<FieldValue> {
        self.run
            .field(object, key)
            .or_else(|| (object == self.action).then(|| self.run.field(self.node, key))?)
    }

    fn parameter(&self, id: &str) -> Option<String> {
        self.run.parameter(id)
    }
}

impl State {
    /// Records (and logs) the `onSuccess` or `onFail` actions of an instance that has just ended.
    pub(super) fn run_actions(&mut self, pid: &str, iid: &str, now: Now) {
        let status = self
            .pipelines
            .get(pid)
            .and_then(|p| p.instances.get(iid))
            .map(|i| i.status);
        let key = match status {
            Some(Status::Finished) => "onSuccess",
            Some(Status::Failed | Status::TimedOut | Status::CascadeFailed) => "onFail",
            _ => return,
        };
        self.take_actions(pid, iid, key, now);
    }

    /// The `lateAfterTimeout` of an instance has passed: unless it has ended, its `onLateAction` actions run.
    pub(super) fn late(&mut self, pid: &str, iid: &str, at: Instant, now: Now) {
        let Some(inst) = self
            .pipelines
            .get_mut(pid)
            .and_then(|p| p.instances.get_mut(iid))
        else {
            return;
        };
        if inst.late_at != Some(at) {
            return;
        }
        inst.late_at = None;
        let ended = inst.status.is_terminal();
        self.dirty.instance(pid, iid);
        if !ended {
            self.take_actions(pid, iid, "onLateAction", now);
        }
    }

    /// Records the actions an instance's activity names under `key`, and logs those that are `SnsAlarm`s.
    fn take_actions(&mut self, pid: &str, iid: &str, key: &str, now: Now) {
        let Some(p) = self.pipelines.get(pid) else {
            return;
        };
        let Some(inst) = p.instances.get(iid) else {
            return;
        };
        let def = inst.definition.clone();
        let actions: Vec<String> = def
            .effective_fields(&inst.component)
            .iter()
            .filter(|f| f.key == key)
            .filter_map(|f| f.ref_value.clone())
            .collect();
        if actions.is_empty() {
            return;
        }
        let mut events = Vec::new();
        for action in &actions {
            let kind = def.type_of(action).unwrap_or_default();
            events.push(format!("{key} {kind} {action} {}", format_utc(now.epoch)));
            if kind == "SnsAlarm" {
                let ctx = ActionContext {
                    run: RunContext {
                        pipeline: p,
                        current_instance: Some(inst),
                    },
                    action,
                    node: iid,
                };
                let field = |name: &str| {
                    def.string(action, name)
                        .map(|v| expr::evaluate_template(&v, action, &ctx).unwrap_or(v))
                        .unwrap_or_default()
                };
                // An alarm may quote a `*`-parameter; its value never reaches the log.
                let line = format!(
                    "dp-local: SnsAlarm {action} ({key} of {iid} in {pid}) to {}: {}: {}",
                    field("topicArn"),
                    field("subject"),
                    field("message")
                );
                eprintln!("{}", def.redact(&line));
            }
        }
        if let Some(inst) = self
            .pipelines
            .get_mut(pid)
            .and_then(|p| p.instances.get_mut(iid))
        {
            inst.events.extend(events);
            self.dirty.instance(pid, iid);
        }
    }
}
