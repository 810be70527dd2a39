//! Leases: a process reserves a few admissions of a bucket's budget in one
//! Redis call and spends them locally. The design, and why no window ever
//! admits more than the limit, are in the crate docs ("Leases").

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use apikeys::{Decision, KeyId, Limit, RateBucket, RateLimitStatus, StoreError};
use hashbrown::HashTable;

use crate::RedisRateLimiter;

/// The lease script. One call, atomically on the server:
/// 1. gives back the unused admissions of earlier leases (`ZREM` by name);
/// 2. if it asks for more than the one request, notes this process as
///    leasing in the bucket (a second sorted set: its processes that asked
///    for a lease in the last window);
/// 3. trims the log to the window and counts it — entries whose score lies
///    in the future (leased admissions) count too;
/// 4. refuses (`{0, retry_ms, 0}`) if the bucket is full, or else adds one
///    entry at `now` (the request being decided) and `k - 1` entries at
///    `now + dur + 1` (the lease), where `k` is `floor(remaining * share /
///    active processes)`, at most what the process wants, and 1 if that is
///    under 2. Answers `{1, remaining after the k, k}`.
///
/// KEYS: the bucket's log, the bucket's set of active processes. ARGV: limit,
/// window (ms), this call's tag, want, dur (ms), process id, share, the
/// number of ranges given back, then `tag, from, to` for each.
const SCRIPT: &str = r#"
local key = KEYS[1]
local procs = KEYS[2]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tag = ARGV[3]
local want = tonumber(ARGV[4])
local dur = tonumber(ARGV[5])
local share = tonumber(ARGV[7])
local nret = tonumber(ARGV[8])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 0, nret - 1 do
  local rtag = ARGV[9 + 3 * i]
  for j = tonumber(ARGV[10 + 3 * i]), tonumber(ARGV[11 + 3 * i]) - 1 do
    redis.call('ZREM', key, rtag .. ':' .. j)
  end
end
if want > 1 then
  redis.call('ZADD', procs, now, ARGV[6])
  redis.call('ZREMRANGEBYSCORE', procs, '-inf', now - window)
  redis.call('PEXPIRE', procs, window)
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local n = redis.call('ZCARD', key)
if n >= limit then
  -- A slot frees when entry n - limit leaves the window.
  local frees = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
  local retry = tonumber(frees[2]) + window - now
  if retry < 1 then retry = 1 end
  return {0, retry, 0}
end
local k = 1
if want > 1 then
  local p = redis.call('ZCARD', procs)
  k = math.floor((limit - n) * share / p)
  if k > want then k = want end
  if k < 2 then k = 1 end
end
redis.call('ZADD', key, now, tag .. ':0')
if k > 1 then
  local args = {}
  local until_ms = now + dur + 1
  for j = 1, k - 1 do
    args[2 * j - 1] = until_ms
    args[2 * j] = tag .. ':' .. j
  end
  redis.call('ZADD', key, unpack(args))
end
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', key, tonumber(last[2]) + window - now)
return {1, limit - n - k, k}
"#;

/// How a leasing [`RedisRateLimiter`] sizes and times its leases (see the
/// crate docs, "Leases"). Made with [`LeaseOptions::default`] and the `with_…`
/// methods, given to [`RedisRateLimiterBuilder::lease`](crate::RedisRateLimiterBuilder::lease).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeaseOptions {
    max_size: u32,
    max_duration: Duration,
    share: f64,
}

impl Default for LeaseOptions {
    /// Leases of at most 64 admissions, living at most 1 s (and a tenth of
    /// the window), each taking at most a quarter of the remaining budget
    /// divided among the bucket's active processes.
    fn default() -> Self {
        LeaseOptions {
            max_size: 64,
            max_duration: Duration::from_secs(1),
            share: 0.25,
        }
    }
}

impl LeaseOptions {
    /// The largest lease accepted by [`LeaseOptions::with_max_size`].
    pub const MAX_SIZE: u32 = 1024;

    /// The most admissions one lease reserves, the request that asked
    /// included (clamped to 1 ..= [`LeaseOptions::MAX_SIZE`]; 1 means no
    /// leases: every request asks Redis, as without leasing). Default 64.
    pub fn with_max_size(mut self, admissions: u32) -> Self {
        self.max_size = admissions.clamp(1, LeaseOptions::MAX_SIZE);
        self
    }

    /// The longest a lease lives (default 1 s). A lease lives this long or a
    /// tenth of its limit's window, whichever is shorter, counted in whole
    /// milliseconds; under 2 ms (windows under 20 ms) there are no leases.
    pub fn with_max_duration(mut self, d: Duration) -> Self {
        self.max_duration = d.min(Limit::MAX_WINDOW);
        self
    }

    /// The fraction of the bucket's remaining budget that the processes
    /// active in it may reserve together in one round (default 0.25): one
    /// lease takes at most `remaining * share / active processes`. Clamped
    /// to 0 ..= 1 (a NaN keeps the default); 0 means no leases.
    pub fn with_share(mut self, share: f64) -> Self {
        if !share.is_nan() {
            self.share = share.clamp(0.0, 1.0);
        }
        self
    }

    /// See [`LeaseOptions::with_max_size`].
    pub fn max_size(&self) -> u32 {
        self.max_size
    }

    /// See [`LeaseOptions::with_max_duration`].
    pub fn max_duration(&self) -> Duration {
        self.max_duration
    }

    /// See [`LeaseOptions::with_share`].
    pub fn share(&self) -> f64 {
        self.share
    }

    /// How long a lease for `limit` lives: [`LeaseOptions::max_duration`]
    /// or a tenth of the window, whichever is shorter, in whole milliseconds;
    /// zero when that is under 2 ms (then that limit is never leased).
    pub fn duration(&self, limit: Limit) -> Duration {
        Duration::from_millis(self.duration_ms(limit))
    }

    fn duration_ms(&self, limit: Limit) -> u64 {
        let window_ms = limit.window().as_millis() as u64;
        let ms = (self.max_duration.as_millis() as u64).min(window_ms / 10);
        if ms < 2 { 0 } else { ms }
    }
}

/// The name of a bucket, as the lease table keeps it.
#[derive(Debug, PartialEq, Eq)]
enum Name {
    Key(KeyId),
    User(Box<str>, Box<str>),
    Account(Box<str>),
}

impl Name {
    fn of(b: RateBucket<'_>) -> Name {
        match b {
            RateBucket::Key(id) => Name::Key(id),
            RateBucket::User { account, user } => Name::User(account.into(), user.into()),
            RateBucket::Account(a) => Name::Account(a.into()),
        }
    }

    #[inline]
    fn is(&self, b: RateBucket<'_>) -> bool {
        match (self, b) {
            (Name::Key(a), RateBucket::Key(b)) => *a == b,
            (Name::User(a, u), RateBucket::User { account, user }) => {
                **a == *account && **u == *user
            }
            (Name::Account(a), RateBucket::Account(b)) => **a == *b,
            _ => false,
        }
    }

    fn bucket(&self) -> RateBucket<'_> {
        match self {
            Name::Key(id) => RateBucket::Key(*id),
            Name::User(account, user) => RateBucket::User { account, user },
            Name::Account(a) => RateBucket::Account(a),
        }
    }
}

/// Unused admissions of a lease, to give back: members `tag:from` up to
/// (not including) `tag:to`.
#[derive(Clone, Copy, Debug)]
struct Return {
    tag: u64,
    from: u32,
    to: u32,
}

/// At most this many ranges wait to be given back per bucket; older ones are
/// dropped (they stay counted until they leave the window: over-counting).
const MAX_RETURNS: usize = 16;

/// One bucket's lease and refusal, in this process.
#[derive(Debug)]
struct Slot {
    hash: u64,
    name: Name,
    /// The limit the lease was reserved under: spent only for that limit.
    limit: Limit,
    /// The limiter's generation when reserved (see `RedisRateLimiter::generation`).
    generation: u64,
    /// Names the lease's members in Redis (`<process>-<tag>:<index>`).
    tag: u64,
    /// Admissions reserved, index 0 being the request that reserved them.
    size: u32,
    /// The next index to spend; `size` when the lease is spent.
    next: u32,
    /// When the reserving call was sent (ns on the limiter's monotonic
    /// clock): no later than when Redis ran it.
    reserved_ns: u64,
    /// The lease's life (from `reserved_ns`).
    dur_ns: u64,
    /// Spend no more at or after this: `reserved_ns + dur_ns`, less a margin
    /// for clocks running at slightly different rates.
    deadline_ns: u64,
    /// What Redis had left after reserving the lease.
    redis_left: u32,
    /// Redis refused this bucket (for `limit`) until then.
    denied_until_ns: u64,
    /// Unused admissions of earlier leases, given back on the next call.
    returns: Vec<Return>,
}

impl Slot {
    fn new(hash: u64, bucket: RateBucket<'_>, limit: Limit, generation: u64) -> Slot {
        Slot {
            hash,
            name: Name::of(bucket),
            limit,
            generation,
            tag: 0,
            size: 0,
            next: 0,
            reserved_ns: 0,
            dur_ns: 0,
            deadline_ns: 0,
            redis_left: 0,
            denied_until_ns: 0,
            returns: Vec::new(),
        }
    }

    /// Stop spending the current lease; give its unused admissions back later.
    fn retire(&mut self) {
        if self.next < self.size {
            if self.returns.len() == MAX_RETURNS {
                self.returns.remove(0);
            }
            self.returns.push(Return {
                tag: self.tag,
                from: self.next,
                to: self.size,
            });
            self.next = self.size;
        }
    }

    /// Until when this slot is worth keeping: its lease or refusal holds, or
    /// its lease ended so recently that its pace still sizes the next one.
    fn keep_until_ns(&self) -> u64 {
        self.deadline_ns
            .saturating_add(self.dur_ns)
            .max(self.denied_until_ns)
    }
}

struct Table {
    slots: HashTable<Slot>,
    sweep_at: usize,
}

/// One shard of the lease table, on its own cache lines.
#[repr(align(128))]
struct Shard(Mutex<Table>);

const SHARDS: usize = 64;

/// The leases of one limiter, per bucket, in 64 shards.
pub(crate) struct Leases {
    options: LeaseOptions,
    script: redis::Script,
    hasher: hashbrown::DefaultHashBuilder,
    shards: Box<[Shard]>,
}

impl Leases {
    pub(crate) fn new(options: LeaseOptions) -> Leases {
        Leases {
            options,
            script: redis::Script::new(SCRIPT),
            hasher: hashbrown::DefaultHashBuilder::default(),
            shards: (0..SHARDS)
                .map(|_| {
                    Shard(Mutex::new(Table {
                        slots: HashTable::new(),
                        sweep_at: 256,
                    }))
                })
                .collect(),
        }
    }

    pub(crate) fn options(&self) -> LeaseOptions {
        self.options
    }

    #[inline]
    fn hash(&self, b: RateBucket<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
        match b {
            RateBucket::Key(id) => h.write_u64(id.as_u64()),
            RateBucket::User { account, user } => {
                h.write_u8(1);
                h.write(account.as_bytes());
                h.write_u8(0xff);
                h.write(user.as_bytes());
            }
            RateBucket::Account(a) => {
                h.write_u8(2);
                h.write(a.as_bytes());
            }
        }
        h.finish()
    }

    #[inline]
    fn shard(&self, hash: u64) -> MutexGuard<'_, Table> {
        self.shards[(hash >> 32) as usize % SHARDS]
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Decide locally if this process can: spend an admission of the bucket's
    /// live lease, or repeat Redis's refusal while it holds. `None`: ask Redis.
    #[inline]
    pub(crate) fn spend(
        &self,
        rl: &RedisRateLimiter,
        bucket: RateBucket<'_>,
        limit: Limit,
    ) -> Option<Decision> {
        let hash = self.hash(bucket);
        let generation = rl.generation.load(Ordering::Acquire);
        let mut table = self.shard(hash);
        let slot = table.slots.find_mut(hash, |s| s.name.is(bucket))?;
        if slot.limit != limit || slot.generation != generation {
            return None;
        }
        let now = rl.now_ns();
        if slot.next < slot.size && now < slot.deadline_ns {
            slot.next += 1;
            let window_ns = limit.window().as_nanos() as u64;
            // The lease's entries leave the window 1 ms after its life + the window.
            let leaves = slot.reserved_ns + slot.dur_ns + 1_000_000 + window_ns;
            return Some(Decision::Allowed(RateLimitStatus {
                limit: limit.requests(),
                remaining: slot
                    .redis_left
                    .saturating_add(slot.size - slot.next)
                    .min(limit.requests() - 1),
                reset: Duration::from_nanos(leaves.saturating_sub(now)),
            }));
        }
        if now < slot.denied_until_ns {
            return Some(Decision::Limited {
                limit: limit.requests(),
                retry_after: Duration::from_nanos(slot.denied_until_ns - now)
                    .max(Duration::from_millis(1)),
            });
        }
        None
    }

    /// Ask Redis: decide this request and reserve a lease with it.
    pub(crate) fn reserve(
        &self,
        rl: &RedisRateLimiter,
        bucket: RateBucket<'_>,
        limit: Limit,
    ) -> Result<Decision, StoreError> {
        // Taken before the call is sent: no later than when Redis runs it.
        let sent_ns = rl.now_ns();
        let generation = rl.generation.load(Ordering::Acquire);
        let dur_ms = self.options.duration_ms(limit);
        let hash = self.hash(bucket);
        let (want, returns) = {
            let mut table = self.shard(hash);
            match table.slots.find_mut(hash, |s| s.name.is(bucket)) {
                None => (1, Vec::new()),
                Some(slot) => {
                    let used = slot.next;
                    let same = slot.limit == limit && slot.generation == generation;
                    slot.retire();
                    let want = if !same {
                        1
                    } else if sent_ns < slot.deadline_ns {
                        // Spent within its life: demand outruns the lease.
                        slot.size.saturating_mul(2)
                    } else if sent_ns < slot.deadline_ns.saturating_add(slot.dur_ns) {
                        // Lived out: size the next one to what was used.
                        used.max(1)
                    } else {
                        1
                    };
                    (want, std::mem::take(&mut slot.returns))
                }
            }
        };
        let want = if dur_ms == 0 || self.options.share == 0.0 {
            1
        } else {
            want.clamp(1, self.options.max_size)
        };
        let tag = rl.counter.fetch_add(1, Ordering::Relaxed);
        rl.redis_calls.fetch_add(1, Ordering::Relaxed);
        let mut con = rl.connection()?;
        let name = bucket.name();
        let mut call = self.script.prepare_invoke();
        call.key(format!("{}{name}", rl.prefix))
            .key(format!("{}p:{name}", rl.prefix))
            .arg(limit.requests())
            .arg(limit.window().as_millis() as u64)
            .arg(format!("{:x}-{tag:x}", rl.member_prefix))
            .arg(want)
            .arg(dur_ms)
            .arg(format!("{:x}", rl.member_prefix))
            .arg(self.options.share)
            .arg(returns.len());
        for r in &returns {
            call.arg(format!("{:x}-{:x}", rl.member_prefix, r.tag))
                .arg(r.from)
                .arg(r.to);
        }
        let out: Vec<i64> = call.invoke(&mut con).map_err(|e| {
            StoreError::unavailable(format!("Redis rate-limit lease script failed: {e}"), e)
        })?;
        rl.give_back(con);
        let requests = limit.requests();
        match out.as_slice() {
            &[1, left, k] if k >= 1 && k <= i64::from(want) && left >= 0 => {
                let (k, left) = (k as u32, left.min(i64::from(requests)) as u32);
                let dur_ns = dur_ms * 1_000_000;
                self.install(hash, bucket, limit, generation, sent_ns, |slot| {
                    slot.retire();
                    slot.tag = tag;
                    slot.size = k;
                    slot.next = 1;
                    slot.reserved_ns = sent_ns;
                    slot.dur_ns = dur_ns;
                    // 1/256 of the life (about 0.4%) covers clocks that run
                    // at slightly different rates; Redis adds 1 ms for its
                    // whole-millisecond clock.
                    slot.deadline_ns = sent_ns + dur_ns - dur_ns / 256;
                    slot.redis_left = left;
                    slot.denied_until_ns = 0;
                });
                let window = limit.window();
                Ok(Decision::Allowed(RateLimitStatus {
                    limit: requests,
                    remaining: (left + (k - 1)).min(requests - 1),
                    reset: if k > 1 {
                        window + Duration::from_millis(dur_ms + 1)
                    } else {
                        window
                    },
                }))
            }
            &[0, retry, _] => {
                let retry_after = Duration::from_millis(retry.max(1) as u64);
                self.install(hash, bucket, limit, generation, sent_ns, |slot| {
                    // Refused at `sent_ns` or later: the refusal holds until
                    // `sent_ns + retry`, if not a little longer.
                    slot.denied_until_ns = sent_ns + retry_after.as_nanos() as u64;
                });
                Ok(Decision::Limited {
                    limit: requests,
                    retry_after,
                })
            }
            other => Err(StoreError::Corrupt(
                format!("unexpected rate-limit lease script answer {other:?}").into(),
            )),
        }
    }

    /// Update (or make) the bucket's slot, under its shard's lock.
    fn install(
        &self,
        hash: u64,
        bucket: RateBucket<'_>,
        limit: Limit,
        generation: u64,
        now: u64,
        update: impl FnOnce(&mut Slot),
    ) {
        let mut table = self.shard(hash);
        let table = &mut *table;
        let slot = match table.slots.find_mut(hash, |s| s.name.is(bucket)) {
            Some(slot) => slot,
            None => {
                if table.slots.len() >= table.sweep_at {
                    table.slots.retain(|s| now < s.keep_until_ns());
                    table.sweep_at = (table.slots.len() * 2).max(256);
                }
                table
                    .slots
                    .insert_unique(hash, Slot::new(hash, bucket, limit, generation), |s| s.hash)
                    .into_mut()
            }
        };
        if slot.limit != limit || slot.generation != generation {
            // Another limit (or an older generation) is never spent for this one.
            slot.retire();
            slot.limit = limit;
            slot.generation = generation;
            slot.denied_until_ns = 0;
        }
        update(slot);
    }

    /// Give every unused admission back (best effort), e.g. at shutdown.
    pub(crate) fn release_all(&self, rl: &RedisRateLimiter) {
        let mut pipe = redis::pipe();
        let mut any = false;
        for shard in self.shards.iter() {
            let mut table = shard.0.lock().unwrap_or_else(PoisonError::into_inner);
            for slot in table.slots.iter_mut() {
                slot.retire();
                let members: Vec<String> = std::mem::take(&mut slot.returns)
                    .iter()
                    .flat_map(|r| {
                        (r.from..r.to)
                            .map(move |j| format!("{:x}-{:x}:{j}", rl.member_prefix, r.tag))
                    })
                    .collect();
                if !members.is_empty() {
                    pipe.cmd("ZREM")
                        .arg(format!("{}{}", rl.prefix, slot.name.bucket().name()))
                        .arg(members)
                        .ignore();
                    any = true;
                }
            }
        }
        if !any || rl.in_outage() {
            return;
        }
        rl.redis_calls.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut con) = rl.connection() {
            if pipe.query::<()>(&mut con).is_ok() {
                rl.give_back(con);
            }
        }
    }
}
