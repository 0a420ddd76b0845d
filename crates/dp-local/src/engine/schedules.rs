//! Activation and schedules: an activation fixes the active definition and starts schedule cursors; instances
//! are made when their time comes, linked to the instances they depend on, and started when those finish.
//!
//! Nothing here hands out tasks; a ready instance gets an attempt from `tasks`.

use super::*;

impl State {
    pub(super) fn activate(&mut self, input: ActivatePipelineInput, now: Now) -> Result<()> {
        let p = self.pipeline_mut(&input.pipeline_id)?;
        let Some(latest) = p.latest.clone() else {
            return Err(ServiceError::invalid_request(format!(
                "Pipeline {} has no pipeline definition; put one before activating",
                p.id
            )));
        };
        let mut def = (*latest).clone();
        if let Some(values) = input.parameter_values {
            let ids: HashSet<&str> = values.iter().map(|v| v.id.as_str()).collect();
            def.parameter_values
                .retain(|v| !ids.contains(v.id.as_str()));
            def.parameter_values.extend(values.iter().cloned());
            def = Definition::new(def.objects, def.parameter_objects, def.parameter_values);
            let findings = definition::validate(&def);
            if let Some((id, messages)) = findings.errors.first() {
                return Err(ServiceError::invalid_request(format!(
                    "{id}: {}",
                    messages.join("; ")
                )));
            }
        }
        let missing = def.missing_parameters();
        if !missing.is_empty() {
            return Err(ServiceError::invalid_request(format!(
                "Missing value for parameter(s): {}",
                missing.join(", ")
            )));
        }
        let def = Arc::new(def);
        p.active = Some(def.clone());
        p.active_version = p.latest_version;
        p.activation += 1;
        let activation = p.activation;
        p.state = PipelineState::Scheduled;
        p.first_activation.get_or_insert(now.epoch);
        p.last_activation = Some(now.epoch);
        let start = input.start_timestamp.map(|t| t.0);
        let pid = p.id.clone();
        match def.schedule_type().unwrap_or(ScheduleType::TimeSeries) {
            ScheduleType::OnDemand => {
                let at = start.unwrap_or(now.epoch).max(p.last_run.saturating_add(1));
                p.last_run = at;
                let components = def.activities();
                let local = self.local_resources;
                let p = self.pipelines.get_mut(&pid).expect("checked above");
                let created: Vec<String> = components
                    .iter()
                    .flat_map(|c| resources::plan_activity(p, c, at, None, &def, local))
                    .collect();
                self.settle_new(&pid, &created, now);
            }
            kind => {
                let activities = def.activities();
                p.cursors.retain(|name, _| activities.contains(name));
                let first_activation = p.first_activation.unwrap_or(now.epoch);
                for activity in def.activities() {
                    if p.cursors.contains_key(&activity) && start.is_none() {
                        continue;
                    }
                    let Some(FieldValue::Ref(schedule)) = def.first(&activity, "schedule") else {
                        continue;
                    };
                    let Some(period) = def
                        .string(&schedule, "period")
                        .and_then(|s| Period::parse(&s))
                    else {
                        continue;
                    };
                    let begin = match def.string(&schedule, "startDateTime") {
                        Some(s) => dp_model::timestamp::parse(&s).unwrap_or(first_activation),
                        None => first_activation,
                    };
                    let begin = start.unwrap_or(begin);
                    let end = def
                        .string(&schedule, "endDateTime")
                        .and_then(|s| dp_model::timestamp::parse(&s));
                    let remaining = def
                        .string(&schedule, "occurrences")
                        .and_then(|s| s.parse().ok());
                    p.cursors.insert(
                        activity,
                        Cursor {
                            next: begin,
                            period,
                            end,
                            remaining,
                            cron: kind == ScheduleType::Cron,
                        },
                    );
                }
                self.materialize(&pid, now);
            }
        }
        self.dirty.pipeline(&pid);
        self.dirty.definition(&pid, format!("active/{activation}"));
        self.requeue_pipeline(&pid, now);
        Ok(())
    }

    /// Creates the instances whose schedule time has come, and sets a timer for the next one.
    pub(super) fn materialize(&mut self, pid: &str, now: Now) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let Some(def) = p.active.clone() else { return };
        if p.deleted || p.state != PipelineState::Scheduled {
            return;
        }
        let mut created = Vec::new();
        let local = self.local_resources;
        self.dirty.pipeline(pid);
        let schedule_now = schedule_time(p.first_activation, now);
        let names: Vec<String> = p.cursors.keys().cloned().collect();
        for name in &names {
            let mut made = 0;
            loop {
                let cursor = &p.cursors[name];
                if cursor.exhausted() || cursor.due() > schedule_now || made >= MAX_BACKFILL {
                    break;
                }
                let at = cursor.next;
                let Some(end) = cursor.period.advance(at, 1) else {
                    break;
                };
                created.extend(resources::plan_activity(
                    p,
                    name,
                    at,
                    Some(end),
                    &def,
                    local,
                ));
                let cursor = &mut p.cursors[name];
                cursor.next = end;
                cursor.remaining = cursor.remaining.map(|r| r - 1);
                made += 1;
            }
        }
        let next_due = p
            .cursors
            .values()
            .filter(|c| !c.exhausted())
            .map(Cursor::due)
            .min();
        self.settle_new(pid, &created, now);
        if let Some(due) = next_due {
            // Schedule time runs `scale` times faster than the wall clock; the millisecond covers rounding down.
            let service = Duration::from_secs((due - schedule_now).max(0) as u64);
            let at = now.instant + now.clock.real(service) + Duration::from_millis(1);
            let Some(p) = self.pipelines.get_mut(pid) else {
                return;
            };
            if p.schedule_timer.is_none_or(|t| at < t) {
                p.schedule_timer = Some(at);
                self.add_timer(
                    at,
                    Timer::Schedule {
                        pipeline: pid.to_string(),
                    },
                );
            }
        }
    }

    /// Links new instances to the instances they depend on, then starts those that are ready.
    pub(super) fn settle_new(&mut self, pid: &str, created: &[String], now: Now) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        for id in created {
            self.dirty.instance(pid, id);
            let inst = &p.instances[id];
            let def = inst.definition.clone();
            let (component, at) = (inst.component.clone(), inst.scheduled_start);
            // What the run itself needs (inputs, preconditions, the activity an output waits for) is wired
            // already; `dependsOn` between activities is added here.
            let mut deps = inst.depends_on.clone();
            for field in def
                .effective_fields(&component)
                .iter()
                .filter(|f| f.key == "dependsOn")
            {
                let Some(target) = &field.ref_value else {
                    continue;
                };
                let candidates = p.by_component.get(target).map(Vec::as_slice).unwrap_or(&[]);
                let exact = candidates
                    .iter()
                    .rev()
                    .find(|c| p.instances[c.as_str()].scheduled_start == at);
                let earlier = || {
                    candidates
                        .iter()
                        .filter(|c| p.instances[c.as_str()].scheduled_start <= at)
                        .max_by_key(|c| p.instances[c.as_str()].scheduled_start)
                };
                if let Some(dep) = exact.or_else(earlier)
                    && !deps.contains(dep)
                {
                    deps.push(dep.clone());
                }
            }
            for dep in &deps {
                p.dependents
                    .entry(dep.clone())
                    .or_default()
                    .push(id.clone());
            }
            p.instances[id].depends_on = deps;
        }
        // lateAfterTimeout counts from the instance's creation (its scheduled time, or now for a back-filled one);
        // as in the service, ondemand pipelines have none.
        let mut late = Vec::new();
        if let Some(p) = self.pipelines.get_mut(pid) {
            for id in created {
                let inst = &mut p.instances[id.as_str()];
                let def = &inst.definition;
                if def.schedule_type() == Some(ScheduleType::OnDemand) {
                    continue;
                }
                if let Some(period) = def
                    .string(&inst.component, "lateAfterTimeout")
                    .and_then(|v| Period::parse(&v))
                {
                    let timeout =
                        Duration::from_secs(period.min_seconds().clamp(0, i64::MAX) as u64);
                    let at = now.instant + now.clock.real(timeout);
                    inst.late_at = Some(at);
                    late.push((at, id.clone()));
                }
            }
        }
        for (at, id) in late {
            self.add_timer(
                at,
                Timer::Late {
                    pipeline: pid.to_string(),
                    instance: id,
                },
            );
        }
        for id in created {
            self.refresh(pid, id, now);
        }
    }

    /// Re-examines an instance waiting on dependencies: starts it, cascades a failure, or leaves it waiting.
    pub(super) fn refresh(&mut self, pid: &str, iid: &str, now: Now) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let Some(inst) = p.instances.get(iid) else {
            return;
        };
        if inst.status != Status::WaitingOnDependencies {
            return;
        }
        let statuses: Vec<Status> = inst
            .depends_on
            .iter()
            .map(|d| p.instances[d.as_str()].status)
            .collect();
        let role = resources::role_of(inst);
        if role == Role::Resource {
            // A resource starts when work on it is ready, not when its own dependencies are met.
            return;
        }
        // A failed input, own precondition or (for a data node) writer means this run can never happen, whatever
        // failureAndRerunMode says; that mode governs `dependsOn` between activities.
        let forced = inst.depends_on.iter().any(|d| {
            let dep = &p.instances[d.as_str()];
            dep.status.is_failure()
                && (role == Role::DataNode || resources::role_of(dep) != Role::Activity)
        });
        if statuses.iter().any(|s| s.is_failure()) {
            if inst.cascade || forced {
                self.dirty.instance(pid, iid);
                let inst = &mut p.instances[iid];
                inst.status = Status::CascadeFailed;
                inst.actual_end = Some(now.epoch);
                self.ended(pid, iid, now);
            }
        } else if statuses.iter().all(|s| *s == Status::Finished) {
            if role == Role::DataNode {
                self.data_ready(pid, iid, now);
            } else {
                self.start_attempt(pid, iid, Duration::ZERO, now);
            }
        }
    }

    /// Called when an instance has ended: its dependents may now run (or fail).
    pub(super) fn ended(&mut self, pid: &str, iid: &str, now: Now) {
        self.run_actions(pid, iid, now);
        self.release_if_idle(pid, iid, now);
        let dependents = self
            .pipelines
            .get(pid)
            .and_then(|p| p.dependents.get(iid).cloned())
            .unwrap_or_default();
        for d in dependents {
            self.refresh(pid, &d, now);
        }
    }
}

/// Schedule time: from a pipeline's first activation on, its schedules run `--time-scale` times faster than the
/// wall clock (at scale 60 a 15-minute period takes 15 s), so `@scheduledStartTime`s run ahead of the wall clock.
/// Before the first activation, and at scale 1, it is the wall clock.
pub(super) fn schedule_time(first_activation: Option<i64>, now: Now) -> i64 {
    let Some(start) = first_activation else {
        return now.epoch;
    };
    let elapsed_ms = (now.epoch_ms - start.saturating_mul(1000)).max(0) as f64;
    let scaled = (elapsed_ms * now.clock.scale() / 1000.0).floor();
    start.saturating_add(scaled.min(i64::MAX as f64) as i64)
}

pub(super) fn period_field(def: &Definition, id: &str, key: &str, default: Duration) -> Duration {
    def.string(id, key)
        .and_then(|v| Period::parse(&v))
        .map(|p| {
            Duration::from_secs(
                p.min_seconds()
                    .clamp(0, clock::MAX_DURATION.as_secs() as i64) as u64,
            )
        })
        .unwrap_or(default)
}

pub(super) fn create_instance(
    p: &mut Pipeline,
    component: &str,
    at: i64,
    end: Option<i64>,
    def: &Arc<Definition>,
) -> String {
    let base = format!("@{component}_{}", format_utc(at));
    let mut id = base.clone();
    let mut n = 1;
    while p.instances.contains_key(&id) {
        n += 1;
        id = format!("{base}_{n}");
    }
    let retries = def
        .string(component, "maximumRetries")
        .and_then(|v| v.parse().ok())
        .unwrap_or(clock::DEFAULT_MAXIMUM_RETRIES);
    let cascade = def
        .string(component, "failureAndRerunMode")
        .is_some_and(|m| m.eq_ignore_ascii_case("cascade"));
    let instance = Instance {
        id: id.clone(),
        component: component.to_string(),
        scheduled_start: at,
        scheduled_end: end,
        status: Status::WaitingOnDependencies,
        paused: p.paused_components.contains(component),
        actual_start: None,
        actual_end: None,
        attempts: Vec::new(),
        max_attempts: retries + 1,
        depends_on: Vec::new(),
        worker_group: def.string(component, "workerGroup"),
        progress_timeout: period_field(
            def,
            component,
            "reportProgressTimeout",
            clock::DEFAULT_PROGRESS_TIMEOUT,
        ),
        retry_delay: period_field(def, component, "retryDelay", clock::DEFAULT_RETRY_DELAY),
        cascade,
        error: None,
        definition: def.clone(),
        activation: p.activation,
        events: Vec::new(),
        late_at: None,
        runs_on: None,
        owner: None,
        give_up_at: None,
    };
    p.by_component
        .entry(component.to_string())
        .or_default()
        .push(id.clone());
    p.instances.insert(id.clone(), instance);
    id
}
