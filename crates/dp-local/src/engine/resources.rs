//! What a run needs besides its activities: the resources it runs on, the data nodes it reads and writes, and the
//! preconditions that guard them, as instances of their own, as the service keeps them.
//!
//! A resource instance (`Ec2Resource`, `EmrCluster`) is stood in for by a local task runner: the engine decides
//! (launch when the first task of the resource's period is ready, release when its last one has ended, stop at
//! `terminateAfter`, retry after the runner died) and hands [`ResourceCommand`]s to the launcher, which owns the
//! processes and reports back what happened to them. Each resource instance has a worker group of its own, which
//! is where the tasks of the activities and preconditions running on it are queued. System-managed preconditions
//! (`S3KeyExists`…) go to [`SERVICE_GROUP`], served by one runner that dp-local launches for its own work, so that
//! dp-local itself never speaks S3 or DynamoDB. This module does no IO: processes are the launcher's business.

use super::schedules::create_instance;
use super::*;
use crate::definition::{Role, SYSTEM_PRECONDITION_TYPES};

/// The worker group of dp-local's own runner, which checks the system-managed preconditions.
pub const SERVICE_GROUP: &str = "dp-local.service";

/// What the engine asks of the launcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceCommand {
    /// Start a task runner polling `group` for the resource attempt `attempt` of `pipeline` (both empty for
    /// dp-local's own runner, which polls [`SERVICE_GROUP`]).
    Launch {
        /// The pipeline id.
        pipeline: String,
        /// The resource attempt id.
        attempt: String,
        /// The worker group the runner polls.
        group: String,
    },
    /// Stop the runner of this resource attempt (SIGTERM, then its shutdown grace, then SIGKILL).
    Stop {
        /// The pipeline id.
        pipeline: String,
        /// The resource attempt id.
        attempt: String,
    },
}

/// The worker group private to one resource instance.
pub fn resource_group(pid: &str, riid: &str) -> String {
    format!("dp-local/{pid}/{riid}")
}

fn parse_group(group: &str) -> Option<(&str, &str)> {
    group.strip_prefix("dp-local/")?.split_once('/')
}

/// The type of an instance's component.
fn type_of(inst: &Instance) -> String {
    inst.definition.type_of(&inst.component).unwrap_or_default()
}

pub(super) fn role_of(inst: &Instance) -> Role {
    inst.definition.role(&inst.component)
}

/// Creates the instances one activity run at `at` needs (the activity, its resource, its input and output data
/// nodes and every precondition on them), wired through `depends_on`, and returns those it created.
pub(super) fn plan_activity(
    p: &mut Pipeline,
    activity: &str,
    at: i64,
    end: Option<i64>,
    def: &Arc<Definition>,
    local: bool,
) -> Vec<String> {
    let mut created = Vec::new();
    let iid = create_instance(p, activity, at, end, def);
    created.push(iid.clone());
    attach(p, &iid, at, end, def, local, &mut created);
    created
}

/// The instance of `component` for the period starting `at`, made (with what it needs) if there is none yet.
fn instance_for(
    p: &mut Pipeline,
    component: &str,
    at: i64,
    end: Option<i64>,
    def: &Arc<Definition>,
    local: bool,
    created: &mut Vec<String>,
) -> String {
    let existing = p.by_component.get(component).and_then(|ids| {
        ids.iter()
            .rev()
            .find(|id| {
                let i = &p.instances[id.as_str()];
                i.scheduled_start == at && i.activation == p.activation
            })
            .cloned()
    });
    if let Some(id) = existing {
        return id;
    }
    let iid = create_instance(p, component, at, end, def);
    created.push(iid.clone());
    if def.role(component) == Role::Resource {
        let group = resource_group(&p.id, &iid);
        p.instances[iid.as_str()].worker_group = Some(group);
    } else {
        attach(p, &iid, at, end, def, local, created);
    }
    iid
}

fn attach(
    p: &mut Pipeline,
    iid: &str,
    at: i64,
    end: Option<i64>,
    def: &Arc<Definition>,
    local: bool,
    created: &mut Vec<String>,
) {
    let component = p.instances[iid].component.clone();
    let role = def.role(&component);
    let type_name = def.type_of(&component).unwrap_or_default();
    if role == Role::Precondition && SYSTEM_PRECONDITION_TYPES.contains(&type_name.as_str()) {
        p.instances[iid].worker_group = Some(SERVICE_GROUP.into());
    } else if local
        && matches!(role, Role::Activity | Role::Precondition)
        && let Some(resource) = def.refs(&component, "runsOn").into_iter().next()
    {
        // As in the service, `runsOn` wins over `workerGroup`.
        let riid = instance_for(p, &resource, at, end, def, local, created);
        let inst = &mut p.instances[iid];
        inst.worker_group = Some(resource_group(&p.id, &riid));
        inst.runs_on = Some(riid);
    }
    let mut deps = Vec::new();
    if role == Role::Activity {
        for input in def.refs(&component, "input") {
            deps.push(instance_for(p, &input, at, end, def, local, created));
        }
    }
    if matches!(role, Role::Activity | Role::DataNode) {
        for check in def.refs(&component, "precondition") {
            let ciid = create_instance(p, &check, at, end, def);
            created.push(ciid.clone());
            p.instances[ciid.as_str()].owner = Some(iid.to_string());
            attach(p, &ciid, at, end, def, local, created);
            // A user-managed check with no place of its own runs where its activity runs; one on a data node
            // (which runs nowhere) goes to dp-local's own runner.
            if p.instances[ciid.as_str()].worker_group.is_none() {
                let (group, runs_on) = {
                    let owner = &p.instances[iid];
                    (owner.worker_group.clone(), owner.runs_on.clone())
                };
                let check = &mut p.instances[ciid.as_str()];
                check.worker_group = Some(group.unwrap_or_else(|| SERVICE_GROUP.to_string()));
                check.runs_on = runs_on;
            }
            deps.push(ciid);
        }
    }
    p.instances[iid].depends_on.extend(deps);
    if role == Role::Activity {
        for output in def.refs(&component, "output") {
            let oiid = instance_for(p, &output, at, end, def, local, created);
            p.instances[oiid.as_str()].depends_on.push(iid.to_string());
        }
    }
}

impl State {
    /// The runner of `group` polled: a resource whose runner was starting is now running.
    pub(super) fn runner_polled(&mut self, group: &str, now: Now) {
        let Some((pid, riid)) = parse_group(group) else {
            return;
        };
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let Some(inst) = p.instances.get_mut(riid) else {
            return;
        };
        let Some(aid) = inst.attempts.last().cloned() else {
            return;
        };
        let attempt = &mut p.attempts[aid.as_str()];
        if attempt.status != Status::Creating || attempt.resource_id.is_none() {
            return;
        }
        attempt.status = Status::Running;
        attempt.actual_start.get_or_insert(now.epoch);
        inst.status = Status::Running;
        inst.actual_start.get_or_insert(now.epoch);
        self.dirty.attempt(pid, &aid);
        self.dirty.instance(pid, riid);
    }

    /// An attempt was queued on `group`: make sure something will poll it. A resource that is not running gets
    /// a new attempt (a launch); dp-local's own runner is launched once. Returns an error when the resource has
    /// ended in failure, so the work can never run.
    pub(super) fn demand_runner(
        &mut self,
        pid: &str,
        iid: &str,
        now: Now,
    ) -> std::result::Result<(), String> {
        let Some(p) = self.pipelines.get(pid) else {
            return Ok(());
        };
        let inst = &p.instances[iid];
        if inst.worker_group.as_deref() == Some(SERVICE_GROUP) {
            if !self.service_runner {
                self.service_runner = true;
                self.commands.push(ResourceCommand::Launch {
                    pipeline: String::new(),
                    attempt: String::new(),
                    group: SERVICE_GROUP.into(),
                });
            }
            return Ok(());
        }
        let Some(riid) = inst.runs_on.clone() else {
            return Ok(());
        };
        let resource = &p.instances[riid.as_str()];
        match resource.status {
            Status::Running => Ok(()),
            Status::Creating => {
                // Its launch may have been dropped while the pipeline was deactivated: line it up again.
                if let Some(aid) = resource.attempts.last().cloned() {
                    let attempt = &p.attempts[aid.as_str()];
                    let key = (pid.to_string(), aid.clone());
                    let pending = attempt.not_before.is_some_and(|t| t > now.instant)
                        || attempt.resource_id.is_some()
                        || self.live.contains(&key)
                        || self.launch_queue.contains(&key);
                    if !pending {
                        self.queue_launch(pid, &aid, now);
                    }
                }
                Ok(())
            }
            Status::WaitingOnDependencies | Status::WaitingForRunner => {
                let waiting_retry = resource
                    .attempts
                    .last()
                    .is_some_and(|a| p.attempts[a.as_str()].status == Status::Creating);
                if !waiting_retry {
                    self.start_attempt(pid, &riid, Duration::ZERO, now);
                }
                Ok(())
            }
            // Released after its earlier work, or canceled: a rerun needs it again.
            Status::Finished | Status::Canceled => {
                self.start_attempt(pid, &riid, Duration::ZERO, now);
                Ok(())
            }
            Status::Failed | Status::TimedOut | Status::CascadeFailed => Err(format!(
                "its resource {riid} ended {}",
                resource.status.as_str()
            )),
        }
    }

    /// Puts a resource attempt in line for a launch, and launches what the `--max-resources` cap allows.
    pub(super) fn queue_launch(&mut self, pid: &str, aid: &str, now: Now) {
        let key = (pid.to_string(), aid.to_string());
        if !self.live.contains(&key) && !self.launch_queue.contains(&key) {
            self.launch_queue.push_back(key);
        }
        self.launch_ready(now);
    }

    /// Launches waiting resource attempts while fewer than `max_resources` are alive.
    pub(super) fn launch_ready(&mut self, now: Now) {
        while self.live.len() < self.max_resources.max(1) {
            let Some((pid, aid)) = self.launch_queue.pop_front() else {
                return;
            };
            let Some(p) = self.pipelines.get_mut(&pid) else {
                continue;
            };
            if p.deleted || p.state != PipelineState::Scheduled {
                continue;
            }
            let Some(attempt) = p.attempts.get_mut(&aid) else {
                continue;
            };
            if attempt.status != Status::Creating {
                continue;
            }
            let inst = &p.instances[attempt.instance.as_str()];
            let Some(group) = inst.worker_group.clone() else {
                continue;
            };
            let terminate_after = inst
                .definition
                .string(&inst.component, "terminateAfter")
                .and_then(|v| Period::parse(&v))
                .map(|p| Duration::from_secs(p.min_seconds().clamp(0, i64::MAX) as u64));
            if let Some(limit) = terminate_after {
                let at = now.instant + now.clock.real(limit);
                attempt.run_deadline = Some(at);
                self.add_timer(
                    at,
                    Timer::Terminate {
                        pipeline: pid.clone(),
                        attempt: aid.clone(),
                    },
                );
            }
            self.dirty.attempt(&pid, &aid);
            self.live.insert((pid.clone(), aid.clone()));
            self.commands.push(ResourceCommand::Launch {
                pipeline: pid,
                attempt: aid,
                group,
            });
        }
    }

    /// The launcher started the runner of a resource attempt (`Ok(resource id)`) or could not (`Err(why)`).
    pub(super) fn resource_launched(
        &mut self,
        pid: &str,
        aid: &str,
        result: std::result::Result<String, String>,
        now: Now,
    ) {
        if pid.is_empty() {
            if let Err(why) = result {
                self.service_runner = false;
                self.fail_service_queue(&why, now);
            }
            return;
        }
        let Some(attempt) = self
            .pipelines
            .get_mut(pid)
            .and_then(|p| p.attempts.get_mut(aid))
        else {
            return;
        };
        match result {
            Ok(id) => {
                attempt.resource_id = Some(id.clone());
                attempt.hostname = Some(id);
                self.dirty.attempt(pid, aid);
            }
            Err(why) => self.resource_exited(pid, aid, &why, now),
        }
    }

    /// The runner of a resource attempt exited. Expected after a release or `terminateAfter`; otherwise the
    /// resource failed: the attempt ends `FAILED`, the work that was running on it fails, and the rules
    /// (`maximumRetries`, `retryDelay`, `actionOnResourceFailure`) decide what runs again.
    pub(super) fn resource_exited(&mut self, pid: &str, aid: &str, how: &str, now: Now) {
        if pid.is_empty() {
            self.service_runner = false;
            return;
        }
        self.live.remove(&(pid.to_string(), aid.to_string()));
        self.launch_ready(now);
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let Some(attempt) = p.attempts.get_mut(aid) else {
            return;
        };
        if attempt.status.is_terminal() {
            return;
        }
        attempt.status = Status::Failed;
        attempt.actual_end = Some(now.epoch);
        attempt.error = Some(ErrorInfo {
            id: Some("ResourceFailed".into()),
            message: Some(format!(
                "The local runner standing in for this resource {}",
                how
            )),
            stack_trace: None,
        });
        self.dirty.attempt(pid, aid);
        let riid = attempt.instance.clone();
        let inst = &p.instances[riid.as_str()];
        let retry_all = !inst
            .definition
            .string(&inst.component, "actionOnResourceFailure")
            .is_some_and(|v| v.eq_ignore_ascii_case("retrynone"));
        let retries_left = (inst.attempts.len() as u32) < inst.max_attempts;
        let reason = format!("Its resource {riid} failed: the local runner {how}");
        if retry_all && retries_left {
            let delay = inst.retry_delay;
            self.fail_running_on(pid, &riid, &reason, true, now);
            self.start_attempt(pid, &riid, delay, now);
        } else {
            let inst = &mut self
                .pipelines
                .get_mut(pid)
                .expect("checked above")
                .instances[riid.as_str()];
            inst.status = Status::Failed;
            inst.actual_end = Some(now.epoch);
            inst.error = Some(ErrorInfo {
                id: Some("ResourceFailed".into()),
                message: Some(format!("The local runner {how}")),
                stack_trace: None,
            });
            self.dirty.instance(pid, &riid);
            self.fail_running_on(pid, &riid, &reason, false, now);
            self.ended(pid, &riid, now);
        }
    }

    /// `terminateAfter` ran out: the runner is stopped and the resource ends `TIMEDOUT` (no retry, as in the
    /// service); work still running on it fails.
    pub(super) fn resource_terminate_after(&mut self, pid: &str, aid: &str, at: Instant, now: Now) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let Some(attempt) = p.attempts.get_mut(aid) else {
            return;
        };
        if attempt.run_deadline != Some(at) || attempt.status.is_terminal() {
            return;
        }
        let now = now.at(at);
        attempt.status = Status::TimedOut;
        attempt.actual_end = Some(now.epoch);
        attempt.error = Some(ErrorInfo {
            id: Some("ResourceTerminated".into()),
            message: Some("The resource reached its terminateAfter and was stopped".into()),
            stack_trace: None,
        });
        let riid = attempt.instance.clone();
        self.dirty.attempt(pid, aid);
        let inst = &mut p.instances[riid.as_str()];
        inst.status = Status::TimedOut;
        inst.actual_end = Some(now.epoch);
        self.dirty.instance(pid, &riid);
        self.stop_resource(pid, aid, now);
        let reason = format!("Its resource {riid} reached its terminateAfter and was stopped");
        self.fail_running_on(pid, &riid, &reason, false, now);
        self.ended(pid, &riid, now);
    }

    fn stop_resource(&mut self, pid: &str, aid: &str, now: Now) {
        if self.live.remove(&(pid.to_string(), aid.to_string())) {
            self.commands.push(ResourceCommand::Stop {
                pipeline: pid.to_string(),
                attempt: aid.to_string(),
            });
        }
        self.launch_ready(now);
    }

    /// Ends the work on resource `riid` that has not ended. With `retry`, each running attempt fails and the
    /// normal retry rules apply (the relaunched resource takes the retries); without, every instance on it that
    /// has not ended fails now, since nothing will ever run it.
    fn fail_running_on(&mut self, pid: &str, riid: &str, reason: &str, retry: bool, now: Now) {
        let Some(p) = self.pipelines.get(pid) else {
            return;
        };
        let on_it: Vec<String> = p
            .instances
            .values()
            .filter(|i| i.runs_on.as_deref() == Some(riid) && !i.status.is_terminal())
            .map(|i| i.id.clone())
            .collect();
        for iid in on_it {
            let p = self.pipelines.get_mut(pid).expect("checked above");
            let error = ErrorInfo {
                id: Some("ResourceFailed".into()),
                message: Some(reason.to_string()),
                stack_trace: None,
            };
            let head = p.instances[iid.as_str()].attempts.last().cloned();
            let mut was_running = false;
            if let Some(aid) = head {
                let attempt = &mut p.attempts[aid.as_str()];
                if matches!(attempt.status, Status::Running | Status::WaitingForRunner) {
                    was_running = attempt.status == Status::Running;
                    attempt.status = Status::Failed;
                    attempt.lease = Lease::Free;
                    attempt.actual_end = Some(now.epoch);
                    attempt.error = Some(error.clone());
                    self.dirty.attempt(pid, &aid);
                }
            }
            self.dirty.instance(pid, &iid);
            if retry {
                if was_running {
                    p.instances[iid.as_str()].error = Some(error);
                    self.after_failed_attempt(pid, &iid, Status::Failed, now);
                }
            } else if p.instances[iid.as_str()].status != Status::WaitingOnDependencies {
                let inst = &mut p.instances[iid.as_str()];
                inst.status = Status::Failed;
                inst.actual_end = Some(now.epoch);
                inst.error = Some(error);
                self.ended(pid, &iid, now);
            }
        }
    }

    /// After an instance ended: its resource is released once nothing on it is left to run.
    pub(super) fn release_if_idle(&mut self, pid: &str, iid: &str, now: Now) {
        let Some(p) = self.pipelines.get(pid) else {
            return;
        };
        let Some(riid) = p.instances.get(iid).and_then(|i| i.runs_on.clone()) else {
            return;
        };
        let busy = p
            .instances
            .values()
            .any(|i| i.runs_on.as_deref() == Some(riid.as_str()) && !i.status.is_terminal());
        if busy {
            return;
        }
        let p = self.pipelines.get_mut(pid).expect("checked above");
        let resource = &mut p.instances[riid.as_str()];
        match resource.status {
            Status::Creating | Status::Running => {
                resource.status = Status::Finished;
                resource.actual_end = Some(now.epoch);
                let head = resource.attempts.last().cloned();
                self.dirty.instance(pid, &riid);
                if let Some(aid) = head {
                    let attempt = &mut p.attempts[aid.as_str()];
                    if !attempt.status.is_terminal() {
                        attempt.status = Status::Finished;
                        attempt.actual_end = Some(now.epoch);
                        self.dirty.attempt(pid, &aid);
                    }
                    self.stop_resource(pid, &aid, now);
                }
                self.ended(pid, &riid, now);
            }
            Status::WaitingOnDependencies => {
                // Never needed: everything that would have run on it ended before it was launched.
                resource.status = Status::Canceled;
                resource.actual_end = Some(now.epoch);
                self.dirty.instance(pid, &riid);
            }
            _ => {}
        }
    }

    /// A task on a resource failed: with the resource's `actionOnTaskFailure: terminate` the resource is
    /// terminated (its runner stopped, the resource attempt `FINISHED`); other work running on it fails and is
    /// retried under its own rules, on a new launch of the resource if it needs one.
    pub(super) fn task_failed_on_resource(&mut self, pid: &str, iid: &str, now: Now) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let Some(riid) = p.instances.get(iid).and_then(|i| i.runs_on.clone()) else {
            return;
        };
        let resource = &mut p.instances[riid.as_str()];
        let terminate = resource
            .definition
            .string(&resource.component, "actionOnTaskFailure")
            .is_some_and(|v| v.eq_ignore_ascii_case("terminate"));
        if !terminate || !matches!(resource.status, Status::Creating | Status::Running) {
            return;
        }
        resource.status = Status::Finished;
        resource.actual_end = Some(now.epoch);
        let Some(aid) = resource.attempts.last().cloned() else {
            return;
        };
        self.dirty.instance(pid, &riid);
        let attempt = &mut p.attempts[aid.as_str()];
        attempt.status = Status::Finished;
        attempt.actual_end = Some(now.epoch);
        attempt.error = Some(ErrorInfo {
            id: Some("TerminatedAfterTaskFailure".into()),
            message: Some(format!(
                "Terminated because a task on it failed ({iid}) and its actionOnTaskFailure is terminate"
            )),
            stack_trace: None,
        });
        self.dirty.attempt(pid, &aid);
        self.stop_resource(pid, &aid, now);
        let reason = format!("Its resource {riid} was terminated after a task on it failed");
        self.fail_running_on(pid, &riid, &reason, true, now);
    }

    /// A resource instance was canceled (set-status, deactivation): its runner stops.
    pub(super) fn resource_canceled(&mut self, pid: &str, riid: &str, now: Now) {
        let Some(aid) = self
            .pipelines
            .get(pid)
            .and_then(|p| p.instances.get(riid))
            .and_then(|i| i.attempts.last().cloned())
        else {
            return;
        };
        self.launch_queue.retain(|(p, a)| !(p == pid && *a == aid));
        self.stop_resource(pid, &aid, now);
    }

    /// dp-local's own runner could not be launched: the checks waiting for it fail with the reason.
    fn fail_service_queue(&mut self, why: &str, now: Now) {
        let waiting: Vec<(String, String)> = self
            .queues
            .get_mut(SERVICE_GROUP)
            .map(|q| q.drain(..).collect())
            .unwrap_or_default();
        for (pid, aid) in waiting {
            let Some(p) = self.pipelines.get_mut(&pid) else {
                continue;
            };
            let Some(attempt) = p.attempts.get_mut(&aid) else {
                continue;
            };
            attempt.queued = false;
            if attempt.status != Status::WaitingForRunner {
                continue;
            }
            let error = ErrorInfo {
                id: Some("ServiceRunnerUnavailable".into()),
                message: Some(format!(
                    "dp-local could not start the task runner that checks system-managed preconditions: {why}"
                )),
                stack_trace: None,
            };
            attempt.status = Status::Failed;
            attempt.actual_end = Some(now.epoch);
            attempt.error = Some(error.clone());
            let iid = attempt.instance.clone();
            p.instances[iid.as_str()].error = Some(error);
            self.dirty.attempt(&pid, &aid);
            self.after_failed_attempt(&pid, &iid, Status::Failed, now);
        }
    }

    /// A precondition's check answered that it does not hold (`FALSE`): checked again after `retryDelay`, without
    /// using a retry, until `preconditionTimeout` has passed; then the precondition ends `TIMEDOUT`. Without a
    /// `preconditionTimeout`, each such answer uses a retry (`maximumRetries`), and the last ends it `FAILED`.
    pub(super) fn check_did_not_hold(&mut self, pid: &str, iid: &str, now: Now) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let inst = &mut p.instances[iid];
        self.dirty.instance(pid, iid);
        if inst.give_up_at.is_some_and(|t| t <= now.instant) {
            inst.status = Status::TimedOut;
            inst.actual_end = Some(now.epoch);
            inst.error = Some(ErrorInfo {
                id: Some("PreconditionTimeout".into()),
                message: Some(format!(
                    "The precondition {} did not hold within its preconditionTimeout",
                    inst.component
                )),
                stack_trace: None,
            });
            self.ended(pid, iid, now);
        } else if inst.give_up_at.is_some() {
            // Within preconditionTimeout a check that does not hold is not a failure: it does not use up
            // maximumRetries.
            inst.max_attempts += 1;
            let delay = inst.retry_delay;
            self.start_attempt(pid, iid, delay, now);
        } else {
            // Without a preconditionTimeout the checks are bounded by maximumRetries, so that a condition that
            // never holds cannot make attempts for ever.
            inst.error = Some(ErrorInfo {
                id: Some("PreconditionNotMet".into()),
                message: Some(format!(
                    "The precondition {} did not hold in {} check(s); give it a preconditionTimeout to keep checking",
                    inst.component,
                    inst.attempts.len()
                )),
                stack_trace: None,
            });
            self.after_failed_attempt(pid, iid, Status::Failed, now);
        }
    }

    /// A data node whose dependencies all finished is ready: it ends `FINISHED` (the service's status for a data
    /// node whose preconditions hold, or that its activity wrote).
    pub(super) fn data_ready(&mut self, pid: &str, iid: &str, now: Now) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let inst = &mut p.instances[iid];
        inst.status = Status::Finished;
        inst.actual_start.get_or_insert(now.epoch);
        inst.actual_end = Some(now.epoch);
        self.dirty.instance(pid, iid);
        self.ended(pid, iid, now);
    }

    /// Takes over the runners of the state this one replaces (a reload after a failed commit): a runner whose
    /// resource attempt is still starting or running here keeps it; the others are stopped. Resource attempts
    /// starting or running without a runner wait for one again, in their old order where they had one.
    pub(super) fn adopt_resources(
        &mut self,
        live: HashSet<(String, String)>,
        queue: VecDeque<(String, String)>,
        now: Now,
    ) {
        let active = |s: &State, key: &(String, String)| {
            s.pipelines
                .get(&key.0)
                .and_then(|p| p.attempts.get(&key.1))
                .is_some_and(|a| matches!(a.status, Status::Creating | Status::Running))
        };
        for key in live {
            if active(self, &key) {
                self.live.insert(key);
            } else {
                self.commands.push(ResourceCommand::Stop {
                    pipeline: key.0,
                    attempt: key.1,
                });
            }
        }
        for key in queue {
            if active(self, &key) && !self.live.contains(&key) {
                self.launch_queue.push_back(key);
            }
        }
        let mut waiting = Vec::new();
        for (pid, p) in &self.pipelines {
            for (aid, a) in &p.attempts {
                let key = (pid.clone(), aid.clone());
                if matches!(a.status, Status::Creating | Status::Running)
                    && role_of(&p.instances[a.instance.as_str()]) == Role::Resource
                    && !self.live.contains(&key)
                    && !self.launch_queue.contains(&key)
                {
                    waiting.push(key);
                }
            }
        }
        for (pid, aid) in waiting {
            let p = self.pipelines.get_mut(&pid).expect("listed above");
            let a = p.attempts.get_mut(&aid).expect("listed above");
            a.status = Status::Creating;
            a.resource_id = None;
            let riid = a.instance.clone();
            p.instances[riid.as_str()].status = Status::Creating;
            self.dirty.attempt(&pid, &aid);
            self.dirty.instance(&pid, &riid);
            self.launch_queue.push_back((pid, aid));
        }
        if self.local_resources {
            self.launch_ready(now);
        }
    }

    /// Rebuilds the launcher's view after a restart: resource runners died with the old process, so every
    /// resource attempt that was starting or running is launched again (the work held by the old runner comes
    /// back through the lease rules).
    pub(super) fn resume_resources(&mut self) {
        let mut again = Vec::new();
        for (pid, p) in &mut self.pipelines {
            for (aid, a) in &mut p.attempts {
                let inst = &p.instances[a.instance.as_str()];
                if role_of(inst) == Role::Resource
                    && matches!(a.status, Status::Creating | Status::Running)
                {
                    a.status = Status::Creating;
                    a.resource_id = None;
                    again.push((pid.clone(), aid.clone(), a.instance.clone()));
                }
            }
        }
        for (pid, aid, riid) in again {
            let Some(p) = self.pipelines.get_mut(&pid) else {
                continue;
            };
            p.instances[riid.as_str()].status = Status::Creating;
            match p.attempts[aid.as_str()].not_before {
                Some(at) if at > Instant::now() => self.add_timer(
                    at,
                    Timer::Retry {
                        pipeline: pid,
                        attempt: aid,
                    },
                ),
                _ => self.launch_queue.push_back((pid, aid)),
            }
        }
        self.service_runner = false;
        if self
            .queues
            .get(SERVICE_GROUP)
            .is_some_and(|q| !q.is_empty())
        {
            self.service_runner = true;
            self.commands.push(ResourceCommand::Launch {
                pipeline: String::new(),
                attempt: String::new(),
                group: SERVICE_GROUP.into(),
            });
        }
    }
}

impl Engine {
    /// Turns local resources on (`local`) with at most `max` runners alive at once, and connects the launcher
    /// that carries out the engine's [`ResourceCommand`]s. Resource attempts that were alive before a restart are
    /// launched again now.
    pub fn use_resources(
        &self,
        local: bool,
        max: usize,
        launcher: Option<tokio::sync::mpsc::UnboundedSender<ResourceCommand>>,
    ) {
        *self.launcher.lock().unwrap_or_else(|e| e.into_inner()) = launcher;
        self.with(|s, now| {
            s.local_resources = local;
            s.max_resources = max.max(1);
            if local {
                s.resume_resources();
                s.launch_ready(now);
            }
        });
    }

    /// Whether activities on resources are run by launched local runners.
    pub fn local_resources(&self) -> bool {
        self.lock().local_resources
    }

    /// The launcher's report that a runner started (`Ok(resource id)`) or could not be started (`Err(reason)`).
    pub fn resource_launched(
        &self,
        pipeline: &str,
        attempt: &str,
        result: std::result::Result<String, String>,
    ) {
        self.with(|s, now| s.resource_launched(pipeline, attempt, result, now));
    }

    /// The launcher's report that a runner exited; `how` says how (`exited with status 1`, `was killed by signal
    /// 9`).
    pub fn resource_exited(&self, pipeline: &str, attempt: &str, how: &str) {
        self.with(|s, now| s.resource_exited(pipeline, attempt, how, now));
    }

    /// What each live resource attempt is (pipeline, attempt, worker group), for the launcher's shutdown.
    pub fn resource_type(&self, pipeline: &str, attempt: &str) -> Option<String> {
        let state = self.lock();
        let p = state.pipelines.get(pipeline)?;
        let a = p.attempts.get(attempt)?;
        Some(type_of(&p.instances[a.instance.as_str()]))
    }
}
