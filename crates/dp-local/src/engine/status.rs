//! set-status and deactivation: pause and resume, cancel, rerun, mark finished.
//!
//! These change instances and attempts directly; the lease rules in `tasks` see the result.

use super::*;

impl State {
    /// Cancels every running attempt of a pipeline (deactivation, deletion).
    pub(super) fn cancel_running(&mut self, pid: &str, now: Now) {
        let Some(p) = self.pipelines.get(pid) else {
            return;
        };
        let running: Vec<String> = p
            .instances
            .values()
            // A resource that is still starting has a runner (or one on its way) to stop too.
            .filter(|i| matches!(i.status, Status::Running | Status::Creating))
            .map(|i| i.id.clone())
            .collect();
        for iid in running {
            self.cancel_instance(pid, &iid, now);
        }
    }

    pub(super) fn cancel_instance(&mut self, pid: &str, iid: &str, now: Now) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let inst = &mut p.instances[iid];
        if inst.status.is_terminal() {
            return;
        }
        inst.status = Status::Canceled;
        inst.actual_end = Some(now.epoch);
        let resource = resources::role_of(inst) == Role::Resource;
        self.dirty.instance(pid, iid);
        if resource {
            self.resource_canceled(pid, iid, now);
        }
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let inst = &mut p.instances[iid];
        if let Some(aid) = inst.attempts.last().cloned() {
            self.dirty.attempt(pid, &aid);
            let attempt = &mut p.attempts[aid.as_str()];
            if !attempt.status.is_terminal() {
                attempt.status = Status::Canceled;
                attempt.lease = Lease::Free;
                if attempt.actual_start.is_some() {
                    attempt.actual_end = Some(now.epoch);
                }
            }
        }
        self.ended(pid, iid, now);
    }

    pub(super) fn deactivate(&mut self, pid: &str, cancel_active: bool, now: Now) -> Result<()> {
        let p = self.pipeline_mut(pid)?;
        if p.state == PipelineState::Scheduled {
            p.state = PipelineState::Paused;
            p.last_deactivation = Some(now.epoch);
            self.dirty.pipeline(pid);
        }
        if cancel_active {
            self.cancel_running(pid, now);
        }
        Ok(())
    }

    pub(super) fn set_status(&mut self, input: SetStatusInput, now: Now) -> Result<()> {
        let pid = input.pipeline_id.as_str();
        let p = self.pipeline(pid)?;
        let status = input.status.as_str();
        const STATUSES: &[&str] = &[
            "PAUSE",
            "RESUME",
            "CANCEL",
            "TRY_CANCEL",
            "RERUN",
            "MARK_FINISHED",
        ];
        if !STATUSES.contains(&status) {
            return Err(ServiceError::invalid_request(format!(
                "Invalid status {status:?}: expected one of {}",
                STATUSES.join(", ")
            )));
        }
        enum Target {
            Component(String),
            Instance(String),
        }
        let mut targets = Vec::new();
        for id in &input.object_ids {
            if let Some(a) = p.attempts.get(id) {
                targets.push(Target::Instance(a.instance.clone()));
            } else if p.instances.contains_key(id) {
                targets.push(Target::Instance(id.clone()));
            } else if p.definition().is_some_and(|d| d.object(id).is_some()) {
                if !matches!(status, "PAUSE" | "RESUME") {
                    return Err(ServiceError::invalid_request(format!(
                        "Status {status} applies to instance and attempt objects; {id} is a component"
                    )));
                }
                targets.push(Target::Component(id.clone()));
            } else {
                return Err(ServiceError::invalid_request(format!(
                    "Object {id} not found in pipeline {pid}"
                )));
            }
        }
        for target in targets {
            match (status, target) {
                ("PAUSE" | "RESUME", Target::Component(c)) => {
                    let p = self.pipelines.get_mut(pid).expect("checked above");
                    let pause = status == "PAUSE";
                    if pause {
                        p.paused_components.insert(c.clone());
                    } else {
                        p.paused_components.remove(&c);
                    }
                    let ids: Vec<String> = p.by_component.get(&c).cloned().unwrap_or_default();
                    self.dirty.pipeline(pid);
                    for iid in ids {
                        p.instances[iid.as_str()].paused = pause;
                        self.dirty.instance(pid, &iid);
                    }
                }
                ("PAUSE" | "RESUME", Target::Instance(iid)) => {
                    let p = self.pipelines.get_mut(pid).expect("checked above");
                    p.instances[iid.as_str()].paused = status == "PAUSE";
                    self.dirty.instance(pid, &iid);
                }
                ("CANCEL" | "TRY_CANCEL", Target::Instance(iid)) => {
                    self.cancel_instance(pid, &iid, now)
                }
                ("RERUN", Target::Instance(iid)) => {
                    self.rerun(pid, &iid);
                    self.refresh(pid, &iid, now);
                }
                ("MARK_FINISHED", Target::Instance(iid)) => {
                    let p = self.pipelines.get_mut(pid).expect("checked above");
                    let inst = &mut p.instances[iid.as_str()];
                    if inst.status != Status::Finished {
                        let head = inst.attempts.last().cloned();
                        inst.status = Status::Finished;
                        inst.actual_end = Some(now.epoch);
                        self.dirty.instance(pid, &iid);
                        if let Some(aid) = head {
                            self.dirty.attempt(pid, &aid);
                            let a = &mut p.attempts[aid.as_str()];
                            if !a.status.is_terminal() {
                                a.status = Status::Canceled;
                                a.lease = Lease::Free;
                            }
                        }
                        self.ended(pid, &iid, now);
                    }
                }
                _ => {}
            }
        }
        if status == "RESUME" {
            self.requeue_pipeline(pid, now);
        }
        Ok(())
    }

    /// Resets an ended instance (and, with cascade, the dependents that failed because of it) to run again.
    pub(super) fn rerun(&mut self, pid: &str, iid: &str) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let inst = &mut p.instances[iid];
        if !inst.status.is_terminal() {
            return;
        }
        let retries = inst
            .definition
            .string(&inst.component, "maximumRetries")
            .and_then(|v| v.parse().ok());
        inst.max_attempts =
            inst.attempts.len() as u32 + retries.unwrap_or(clock::DEFAULT_MAXIMUM_RETRIES) + 1;
        inst.status = Status::WaitingOnDependencies;
        inst.actual_start = None;
        inst.actual_end = None;
        inst.error = None;
        self.dirty.instance(pid, iid);
        let cascaded: Vec<String> = p
            .dependents
            .get(iid)
            .map(|ds| {
                ds.iter()
                    .filter(|d| p.instances[d.as_str()].status == Status::CascadeFailed)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for d in cascaded {
            self.rerun(pid, &d);
        }
    }
}
