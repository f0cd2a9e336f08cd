"""Fault-injection bench: a mixed load through the running local stack, once with no faults
(baseline) and once with faults (infra/fault-proxy.py at --rate, and with --kills SIGKILLs of function
processes), then counts what ended, what did not, what went missing and what was done twice.
Run through infra/bench/faults (it starts the stack with FAULT_PROXY=1). Stdlib only.
"""
import argparse
import collections
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

API = os.environ["API_URL"]
FAULT_URL = os.environ["FAULT_URL"]
IMAGES = os.environ["IMAGES_URL"]
STATE = os.environ["JOBS_STATE_DIR"]
TARGET = os.environ["CARGO_TARGET_DIR"]
FINAL = {"completed", "failed", "cancelled"}
STATUSES = ["pending", "queued", "processing", "completed", "failed", "cancelled"]
FUNCTIONS = {"api", "ingest", "worker", "sweeper"}
STORES = ["S00339218", "S01408764"]  # in functions/worker/data/store_master.csv
UNKNOWN_STORE = "S99999999"
SAMPLES = ["shelf-aisle.png", "storefront.gif", "checkout.bmp", "produce.jpg"]
T0 = time.monotonic()
# The bench signs in as an admin of the local issuer (it counts every job, drops included);
# its files live under its own prefix, and its archives under archive/<owner>/.
USER = "bench-admin"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOKEN = subprocess.run([os.path.join(ROOT, "infra", "token"), USER, "--group", "admin"],
                       check=True, capture_output=True, text=True).stdout.strip()


def say(msg):
    print(f"[faults {time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def env_var(name):
    with open(os.path.join(STATE, "functions.env")) as f:
        for line in f:
            if line.startswith(name + "="):
                return line.strip().split("=", 1)[1]
    raise SystemExit(f"{name} missing from {STATE}/functions.env (is the stack up?)")


# ---- HTTP ----------------------------------------------------------------------------------
class HttpError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status, self.body = status, body


def http(method, url, body=None, headers=None, timeout=40):  # > the api's 29 s + 2 s in the bridge
    headers = {"authorization": f"Bearer {TOKEN}", **(headers or {})}
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            data = r.read()
            return r.status, json.loads(data) if data else None
    except urllib.error.HTTPError as e:
        raise HttpError(e.code, e.read().decode("utf-8", "replace")) from None


def get(path, attempts=6):
    """GET API_URL+path as JSON, retrying 5xx and connection errors (reads go through the faulty
    functions too). 404 -> None."""
    for i in range(attempts):
        try:
            return http("GET", API + path)[1]
        except HttpError as e:
            if e.status == 404:
                return None
            if e.status < 500 or i == attempts - 1:
                raise
        except OSError:
            if i == attempts - 1:
                raise
        time.sleep(0.3 * 2 ** i)


def list_jobs(query):
    """Every job of a listing (all cursor pages)."""
    jobs, nxt = [], None
    while True:
        q = query + ("&next=" + urllib.parse.quote(nxt) if nxt else "")
        page = get(f"/jobs?limit=200&{q}")
        jobs += page["jobs"]
        nxt = page.get("next")
        if not nxt:
            return jobs


def aws(*args):
    subprocess.run(["aws", *args], check=True, stdout=subprocess.DEVNULL)


def aws_json(*args):
    out = subprocess.run(["aws", *args, "--output", "json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else {}


# ---- the load -----------------------------------------------------------------------------
SIZES = {  # archive ok, archive missing, image jobs x images, uploads x lines, drops x lines
    "full": dict(archive=24, missing=6, image_jobs=3, images=60, uploads=6, drops=4, lines=300),
    "short": dict(archive=8, missing=2, image_jobs=2, images=30, uploads=2, drops=2, lines=120),
}


def jsonl(path, n, rng):
    """Writes n lines, ~4 % of them invalid; returns (valid, invalid line numbers)."""
    levels = ["debug", "info", "info", "info", "warn", "error"]
    bad = []
    with open(path, "w") as f:
        for i in range(1, n + 1):
            r = rng.random()
            if r < 0.01:
                f.write('{"timestamp": "2026-11-23T10:00:00Z", "level": "info", "message": "truncated\n')
            elif r < 0.02:
                f.write(json.dumps({"timestamp": "2026-11-23T10:00:00Z", "level": "notice", "message": "bad level"}) + "\n")
            elif r < 0.03:
                f.write(json.dumps({"timestamp": "yesterday", "level": "info", "message": "bad time"}) + "\n")
            elif r < 0.04:
                f.write(json.dumps({"timestamp": "2026-11-23T10:00:00Z", "level": "info", "message": ""}) + "\n")
            else:
                f.write(json.dumps({"timestamp": f"2026-11-23T10:{i // 60 % 60:02d}:{i % 60:02d}Z", "level": rng.choice(levels),
                                    "message": f"bench line {i}", "service": "bench", "trace_id": f"{i:016x}"}) + "\n")
                continue
            bad.append(i)
    return n - len(bad), bad


class Phase:
    def __init__(self, name, run, size, rng, bucket, tmp):
        self.name, self.tag, self.size, self.rng, self.bucket = name, f"bench-{run}-{name}", size, rng, bucket
        self.tmp = os.path.join(tmp, name)
        os.makedirs(self.tmp)
        self.jobs = {}       # id -> expectation dict (kind, expect, ...)
        self.refused = collections.Counter()   # submissions that got no 2xx, by route
        self.drops = {}      # s3 key -> expectation (job id found later)
        self.events = []

    # -- submissions --
    def submit(self, kills=None):
        s = self.size
        # archive sources: one CLI call for all of them
        src = os.path.join(self.tmp, "media")
        os.makedirs(src)
        for i in range(s["archive"]):
            with open(os.path.join(src, f"clip {i}.bin"), "wb") as f:
                f.write(os.urandom(4096 + i))
        aws("s3", "cp", "--recursive", "--only-show-errors", src, f"s3://{self.bucket}/uploads/{USER}/{self.tag}/")
        jsonl_dir = os.path.join(self.tmp, "drops")
        os.makedirs(jsonl_dir)
        drop_expect = {}
        for i in range(s["drops"]):
            valid, bad = jsonl(os.path.join(jsonl_dir, f"drop-{i}.jsonl"), s["lines"], self.rng)
            drop_expect[f"uploads/{self.tag}/drop-{i}.jsonl"] = dict(kind="log_ingest", expect="completed", lines=s["lines"], valid=valid, bad=bad)
        work = []
        for i in range(s["archive"] + s["missing"]):
            work.append(("archive", i))
        for i in range(s["image_jobs"]):
            work.append(("image", i))
        for i in range(s["uploads"]):
            work.append(("upload", i))
        self.rng.shuffle(work)
        t = time.monotonic()
        dropped = False
        for n, (what, i) in enumerate(work):
            if not dropped and n >= len(work) // 2:  # the drops land in the middle of the load
                aws("s3", "cp", "--recursive", "--only-show-errors", jsonl_dir, f"s3://{self.bucket}/uploads/{self.tag}/")
                self.drops = drop_expect
                dropped = True
            getattr(self, "submit_" + what)(i)
        if not dropped:
            aws("s3", "cp", "--recursive", "--only-show-errors", jsonl_dir, f"s3://{self.bucket}/uploads/{self.tag}/")
            self.drops = drop_expect
        self.submitted_at = time.monotonic()
        say(f"{self.name}: submitted {len(work)} requests + {len(drop_expect)} dropped files in {self.submitted_at - t:.1f}s "
            f"({len(self.jobs)} accepted, refused: {dict(self.refused) or 0})")

    def submit_archive(self, i):
        ok = i < self.size["archive"]
        asset = f"{self.tag}-a{i}"
        folder = f"s3://{self.bucket}/uploads/{USER}/{self.tag}"
        source = f"{folder}/clip {i}.bin" if ok else f"{folder}/missing {i}.bin"
        body = json.dumps({"kind": "archive", "priority": 1 + i % 5, "payload": {"asset_id": asset, "source": source}}).encode()
        key = f"{asset}-key"
        for attempt in range(4):  # a client retrying with its Idempotency-Key
            try:
                _, job = http("POST", API + "/jobs", body, {"content-type": "application/json", "idempotency-key": key})
                self.jobs[job["id"]] = dict(kind="archive", expect="completed" if ok else "failed", asset=asset,
                                            file=f"clip {i}.bin", reason=None if ok else "source object not found")
                return
            except HttpError as e:
                if e.status < 500:
                    self.refused[f"archive {e.status}"] += 1
                    return
            except OSError:
                pass
            time.sleep(0.5 * 2 ** attempt)
        self.refused["archive 5xx/reset"] += 1

    def submit_image(self, i):
        n = self.size["images"]
        per_visit = 10
        visits, expected = [], collections.Counter()
        for v in range(n // per_visit):
            store = STORES[v % 2]
            if i == 0 and v == 1:
                store = UNKNOWN_STORE  # this job fails: every store's first error, the rest measured
            urls = [f"{IMAGES}/{SAMPLES[(v + k) % len(SAMPLES)]}?{self.tag}-i{i}-v{v}-{k}" for k in range(per_visit)]
            visits.append({"store_id": store, "image_url": urls, "visit_time": "2026-11-23T10:00:00"})
            for u in urls:
                expected[(store, u)] += 1
        body = json.dumps({"count": len(visits), "visits": visits}).encode()
        try:
            _, r = http("POST", API + "/api/submit/", body, {"content-type": "application/json"})
        except (HttpError, OSError) as e:
            self.refused[f"image {getattr(e, 'status', 'reset')}"] += 1
            return
        self.jobs[r["job_id"]] = dict(kind="image", expect="failed" if i == 0 else "completed", images=expected,
                                      unknown=UNKNOWN_STORE if i == 0 else None, reason="unknown store" if i == 0 else None)

    def submit_upload(self, i):
        path = os.path.join(self.tmp, f"upload-{i}.jsonl")
        valid, bad = jsonl(path, self.size["lines"], self.rng)
        name = f"{self.tag}-u{i}.jsonl"
        boundary = "benchboundary" + str(self.rng.randrange(10**9))
        with open(path, "rb") as f:
            data = f.read()
        body = (f"--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                "content-type: application/x-ndjson\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        try:
            _, r = http("POST", API + "/api/v1/files/upload", body, {"content-type": f"multipart/form-data; boundary={boundary}"})
        except (HttpError, OSError) as e:
            self.refused[f"upload {getattr(e, 'status', 'reset')}"] += 1
            return
        self.jobs[r["job_id"]] = dict(kind="log_ingest", expect="completed", lines=self.size["lines"], valid=valid, bad=bad, name=name)

    # -- waiting --
    def find_drops(self):
        """Jobs of the dropped files, by key (several jobs for one key = doubled)."""
        found = collections.defaultdict(list)
        for j in list_jobs("kind=log_ingest"):
            key = (j.get("payload") or {}).get("key", "")
            if key in self.drops:
                found[key].append(j["id"])
        return found

    def settled(self):
        """Every drop has its job and every job is finished (as of the last wait)."""
        return bool(getattr(self, "last_done", False))

    def wait(self, bound):
        t_end = time.monotonic() + bound
        last = {}
        last_print = 0
        self.drop_jobs = {}
        while True:
            try:
                if len(self.drop_jobs) < len(self.drops):
                    self.drop_jobs = self.find_drops()
            except (HttpError, OSError) as e:
                say(f"{self.name}: listing failed ({e}); trying again")
            ids = list(self.jobs) + [i for v in self.drop_jobs.values() for i in v]
            for jid in ids:
                if last.get(jid, {}).get("status") in FINAL:
                    continue
                try:
                    job = get(f"/jobs/{jid}", attempts=2)
                    last[jid] = job or {"status": "missing"}
                except (HttpError, OSError) as e:
                    last.setdefault(jid, {"status": "unknown"})
                    say(f"{self.name}: GET /jobs/{jid} failed ({e})")
                    break
            pending = collections.Counter(last[j]["status"] for j in ids if last[j]["status"] not in FINAL)
            missing_drops = len(self.drops) - len(self.drop_jobs)
            done = not pending and not missing_drops
            self.last_done = done
            now = time.monotonic()
            if done or now - last_print >= 5 or now >= t_end:
                say(f"{self.name}: {len(ids) - sum(pending.values())}/{len(ids)} final"
                    + (f"; waiting for {dict(pending)}" if pending else "")
                    + (f"; {missing_drops} dropped file(s) without a job yet" if missing_drops else ""))
                last_print = now
            if done:
                self.drained = now - self.submitted_at
                break
            if now >= t_end:
                self.drained = None
                say(f"{self.name}: bound of {bound}s passed")
                break
            time.sleep(1.5)
        self.final = last

    # -- counting --
    def count(self):
        c = dict(accepted=len(self.jobs) + len(self.drops), completed=0, failed=0, stuck=0, lost=0, doubled=0)
        failed_by = collections.Counter()
        notes = []
        stuck = []
        stuck_ids = []
        retried = collections.Counter()

        def lost(n, why):
            c["lost"] += n
            notes.append(f"lost {n}: {why}")

        def doubled(n, why):
            c["doubled"] += n
            notes.append(f"doubled {n}: {why}")

        archived = collections.Counter()
        listing = aws_json("s3api", "list-objects-v2", "--bucket", self.bucket, "--prefix", f"archive/{USER}/{self.tag}-")
        for o in listing.get("Contents", []):
            archived[o["Key"].split("/")[2]] += 1

        expectations = dict(self.jobs)
        for key, exp in self.drops.items():
            ids = self.drop_jobs.get(key, [])
            if not ids:
                lost(1, f"dropped s3://{self.bucket}/{key}: no job by the bound")
                continue
            if len(ids) > 1:
                doubled(len(ids) - 1, f"{key}: {len(ids)} jobs {ids}")
            expectations[ids[0]] = dict(exp, key=key)

        for jid, exp in expectations.items():
            job = self.final.get(jid) or get(f"/jobs/{jid}") or {"status": "missing"}
            st = job["status"]
            if st == "missing":
                lost(1, f"{exp['kind']} job {jid} accepted but not found")
                continue
            if st not in FINAL:
                c["stuck"] += 1
                stuck.append(f"{exp['kind']} {jid} {st} (attempts {job.get('attempts')}, updated {job.get('updated_at')})")
                stuck_ids.append(jid)
                continue
            if (job.get("attempts") or 0) > 1:
                retried[exp["kind"]] += 1
            if st == "completed":
                c["completed"] += 1
                if exp["expect"] != "completed":
                    notes.append(f"{exp['kind']} {jid} completed, expected {exp['expect']}")
            else:
                c["failed"] += 1
                reason = normalize(job.get("error") or st)
                failed_by[(exp["kind"], "expected" if exp["expect"] == st else "UNEXPECTED", reason)] += 1
            if exp["kind"] == "archive":
                n = archived.get(exp["asset"], 0)
                if st == "completed" and n == 0:
                    lost(1, f"archive job {jid} completed but archive/{USER}/{exp['asset']}/ is empty")
                if n > 1:
                    doubled(n - 1, f"archive/{USER}/{exp['asset']}/ holds {n} objects")
                if exp["expect"] == "failed" and n:
                    doubled(n, f"archive/{USER}/{exp['asset']}/ written for a missing source")
            elif exp["kind"] == "image":
                r = get(f"/jobs/{jid}/images")
                got = collections.Counter((i["store_id"], i["url"]) for i in r["images"])
                want = collections.Counter({k: v for k, v in exp["images"].items() if k[0] != exp["unknown"]})
                extra, missing = got - want, want - got
                if extra:
                    doubled(sum(extra.values()), f"image job {jid}: {sum(got.values())} results for {sum(want.values())} images")
                if missing:
                    lost(sum(missing.values()), f"image job {jid} {st}: {sum(missing.values())} of {sum(want.values())} images without a result")
                if len(r["images"]) > r["images_total"]:
                    notes.append(f"image job {jid}: {len(r['images'])} results > images_total {r['images_total']}")
            elif exp["kind"] == "log_ingest":
                info = get(f"/api/v1/jobs/{jid}") or {}
                lines = entry_lines(jid)  # every stored entry's line number, all pages
                valid = set(range(1, exp["lines"] + 1)) - set(exp["bad"])
                got = collections.Counter(lines)
                missing = valid - set(got)
                dups = sum(n - 1 for n in got.values() if n > 1)
                wrong = set(got) - valid
                stored = info.get("lines_stored", 0)
                if missing:
                    lost(len(missing), f"ingest {jid} {st}: {len(valid) - len(missing)} of {len(valid)} valid lines stored")
                if dups:
                    doubled(dups, f"ingest {jid}: {dups} entries listed twice")
                if stored > len(valid):
                    doubled(stored - len(valid), f"ingest {jid}: lines_stored {stored} > {len(valid)} valid lines")
                if wrong:
                    notes.append(f"ingest {jid}: invalid lines stored: {sorted(wrong)[:10]}")
                if st == "completed":
                    rejected = [r["line"] for r in info.get("rejected", [])]
                    if (info.get("lines_read"), info.get("lines_rejected"), stored) != (exp["lines"], len(exp["bad"]), len(valid)) \
                            or rejected != exp["bad"][:100]:
                        notes.append(f"ingest {jid}: read/rejected/stored {info.get('lines_read')}/{info.get('lines_rejected')}/"
                                     f"{stored}, expected {exp['lines']}/{len(exp['bad'])}/{len(valid)}")
        if retried:
            notes.append(f"jobs that took more than one attempt: {dict(retried)}")
        self.ghosts = self.find_ghosts(set(expectations))
        for g in self.ghosts:
            notes.append(f"unacknowledged: {g['kind']} {g['id']} {g['status']} (created though the client got an error)")
            if g["status"] not in FINAL:
                c["stuck"] += 1
                stuck.append(f"{g['kind']} {g['id']} {g['status']} (unacknowledged)")
                stuck_ids.append(g["id"])
        self.counts, self.failed_by, self.notes, self.stuck, self.stuck_ids = c, failed_by, notes, stuck, stuck_ids
        return c

    def find_ghosts(self, known):
        """Jobs of this phase the client never got an id for (an answer lost after the write)."""
        ghosts = []
        for j in list_jobs(f"kind=archive") + list_jobs("kind=image") + list_jobs("kind=log_ingest"):
            if j["id"] in known:
                continue
            blob = json.dumps(j.get("payload"))
            if self.tag + "-" in blob or self.tag + "/" in blob:
                ghosts.append(j)
        return ghosts


def entry_lines(jid):
    lines, nxt = [], None
    for _ in range(10000):
        q = "?limit=200" + ("&next=" + urllib.parse.quote(nxt) if nxt else "")
        page = get(f"/api/v1/jobs/{jid}/entries{q}")
        if page is None:
            break
        lines += [e["line"] for e in page["entries"]]
        nxt = page.get("next")
        if not nxt:
            break
    return lines


def normalize(error):
    e = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f-]{27,}", "ID", str(error))
    e = re.sub(r"s3://\S+", "<s3 url>", e)
    e = re.sub(r"\b[A-Z]?\d+\b", "N", e)
    return e[:110]


def stats_vs_listing():
    """GET /stats by status against full listings per status (both read after the drain)."""
    diffs = {}
    for _ in range(3):  # a job may move between the two reads: take the first stable reading
        stats = get("/stats")
        diffs = {}
        for st in STATUSES:
            listed = len(list_jobs(f"status={st}"))
            counted = stats["by_status"].get(st, 0)
            if listed != counted:
                diffs[st] = (counted, listed)
        if not diffs:
            return {}
        time.sleep(2)
    return diffs


# ---- kills --------------------------------------------------------------------------------
class Killer(threading.Thread):
    """SIGKILLs one function process (a descendant of our own `cargo lambda watch`, never anyone
    else's) at random intervals until stopped or `limit` kills."""

    def __init__(self, rng, interval, limit):
        super().__init__(daemon=True)
        self.rng, self.interval, self.limit = rng, interval, limit
        self.stop_ev = threading.Event()
        self.kills = []
        with open(os.path.join(STATE, "pids", "watch")) as f:
            self.watch = int(f.read().strip())

    def candidates(self):
        children = collections.defaultdict(list)
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open(f"/proc/{p}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children[ppid].append(int(p))
            except (OSError, IndexError, ValueError):
                continue
        out, todo = [], [self.watch]
        while todo:
            pid = todo.pop()
            for c in children.get(pid, []):
                todo.append(c)
                try:  # " (deleted)": the binary was rebuilt since the process started
                    exe = os.readlink(f"/proc/{c}/exe").removesuffix(" (deleted)")
                except OSError:
                    continue
                if os.path.basename(exe) in FUNCTIONS and exe.startswith(TARGET):
                    out.append((c, os.path.basename(exe)))
        return sorted(out)

    def run(self):
        while not self.stop_ev.wait(self.rng.uniform(*self.interval)):
            live = collections.Counter(name for _, name in self.candidates())
            # `cargo lambda watch` does not replace a killed instance: killing a function's last
            # one would leave it dead until watch restarts (every invocation hanging until its
            # timeout). Keep one of each alive; restore_functions() restarts watch afterwards.
            procs = [p for p in self.candidates() if live[p[1]] >= 2]
            if not procs:
                continue
            # Prefer a process that used CPU in the last 100 ms (likely mid-invocation; one waiting
            # on the network looks idle, so "idle" kills may still hit an invocation).
            hot = [p for p in procs if busy(p[0])]
            pid, name = self.rng.choice(hot or procs)
            try:
                os.kill(pid, signal.SIGKILL)
                self.kills.append((name, pid))
                with open(KILLED, "a") as f:
                    f.write(f"{self.watch} {name} {pid}\n")
                say(f"killed {name} (pid {pid}{', busy' if hot else ', idle'}) [{len(self.kills)}]")
            except ProcessLookupError:
                pass
            if len(self.kills) >= self.limit:
                return


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


KILLED = os.path.join(STATE, "bench-faults-killed")  # "WATCH_PID NAME PID" lines


def killed_before():
    """Instances this watch lost to an earlier run's kills (a run cut short does not restore)."""
    try:
        with open(os.path.join(STATE, "pids", "watch")) as f:
            watch = f.read().strip()
        with open(KILLED) as f:
            return [line.split()[1] for line in f if line.split()[0] == watch]
    except (OSError, IndexError):
        return []


def restore_functions(why):
    """Restarts `cargo lambda watch` (its instances killed are not replaced), keeping the proxy."""
    say(f"restarting cargo lambda watch: {why}")
    if os.path.exists(KILLED):
        os.remove(KILLED)
    subprocess.run(["bash", "-c", 'source "$1/infra/env.sh" && stop watch && FAULT_PROXY=1 FAULT_RATE=0 "$1/infra/up" --no-demo',
                    "restore", ROOT], check=True, stdout=subprocess.DEVNULL)
    for _ in range(120):  # until an api answers again (instances start through `cargo run`)
        try:
            http("GET", API + "/stats", timeout=60)
            return
        except (HttpError, OSError):
            time.sleep(2)


def busy(pid):
    """Whether the process used CPU in the last 100 ms (a hint that it was mid-invocation)."""
    def ticks():
        with open(f"/proc/{pid}/stat") as f:
            v = f.read().rsplit(")", 1)[1].split()
        return int(v[11]) + int(v[12])
    try:
        a = ticks()
        time.sleep(0.1)
        return ticks() > a
    except OSError:
        return False


def follow_late(ids, seconds, phases=()):
    """Polls jobs that were stuck at the bound: which end later (and when), which never do; and
    dropped files that had no job at the bound."""
    drops = {(p, k) for p in phases for k in p.drops if not p.drop_jobs.get(k)}
    say(f"following {len(ids)} stuck job(s) and {len(drops)} dropped file(s) without a job for {seconds:.0f}s more (not counted)")
    t0, left = time.monotonic(), set(ids)
    while (left or drops) and time.monotonic() - t0 < seconds:
        for p in {p for p, _ in drops}:
            try:
                found = p.find_drops()
            except (HttpError, OSError):
                continue
            for key in [k for q, k in drops if q is p and found.get(k)]:
                drops.discard((p, key))
                left.update(found[key])
                say(f"  dropped {key} got its job {found[key][0]} {time.monotonic() - t0:.0f}s after the bound")
        for jid in sorted(left):
            job = get(f"/jobs/{jid}") or {"status": "missing"}
            if job["status"] in FINAL:
                left.discard(jid)
                say(f"  {job.get('kind')} {jid} ended {job['status']} {time.monotonic() - t0:.0f}s after the bound"
                    + (f": {normalize(job.get('error'))}" if job.get("error") else ""))
        time.sleep(5)
    for _, key in sorted(drops, key=lambda d: d[1]):
        say(f"  dropped {key} still has no job")
    for jid in sorted(left):
        job = get(f"/jobs/{jid}") or {"status": "missing"}
        say(f"  {job.get('kind')} {jid} still {job['status']} (attempts {job.get('attempts')}, updated {job.get('updated_at')})")


def faults(rate, seed, reset=True):
    return http("POST", f"{FAULT_URL}/__faults?rate={rate}&seed={seed}&reset={1 if reset else 0}")[1]


# ---- main ---------------------------------------------------------------------------------
def run_phase(name, args, run, size, bucket, tmp, rate, kills):
    rng = random.Random(f"{args.seed}-{name}")
    faults(rate, args.seed)
    say(f"=== {name}: fault rate {rate}, kills {'on' if kills else 'off'}")
    phase = Phase(name, run, size, rng, bucket, tmp)
    killer = None
    if kills:
        killer = Killer(random.Random(f"{args.seed}-kills"), (2.0, 6.0) if args.short else (3.0, 10.0), 2 if args.short else 3)
        killer.start()
    t = time.monotonic()
    phase.submit()
    phase.wait(args.bound)
    if killer:
        killer.stop_ev.set()
        killer.join(2)
        if killer.kills and not phase.settled():
            # Lambda replaces a killed environment at once; `cargo lambda watch` does not, and an
            # invocation routed to a dead instance hangs until watch restarts. Replace them, as
            # Lambda would, and give what they held (e.g. a dropped file's S3 event, retried
            # asynchronously) one more bounded wait before counting.
            restore_functions(f"{len(killer.kills)} instance(s) killed during the phase")
            killer.restored = True
            phase.wait(60)
    phase.fault_counts = http("GET", f"{FAULT_URL}/__faults")[1]
    faults(0, args.seed, reset=False)  # counting reads go through clean functions
    try:
        phase.count()
    except (HttpError, OSError) as e:
        say(f"{name}: counting failed, the API does not answer: {e}")
        print("stuck=? lost=? doubled=? (not counted)")
        sys.exit(2)
    phase.kills = killer.kills if killer else []
    phase.wall = time.monotonic() - t
    return phase


def selftest(phase):
    """Checks the counters against known damage: one extra archive copy, one stored entry removed,
    one image result removed from nothing (the image check is exercised by a duplicated
    expectation), then puts things back. The bench's counts are trusted only if these move."""
    before = dict(phase.counts)
    jobs = [(j, e) for j, e in phase.jobs.items() if phase.final.get(j, {}).get("status") == "completed"]
    arch = next(((j, e) for j, e in jobs if e["kind"] == "archive"), None)
    ing = next(((j, e) for j, e in jobs if e["kind"] == "log_ingest"), None)
    img = next(((j, e) for j, e in jobs if e["kind"] == "image"), None)
    if not (arch and ing and img):
        say("selftest: needs a completed archive, ingest and image job; skipped")
        return False
    direct = ["--endpoint-url", os.environ["AWS_ENDPOINT_URL_S3"]]  # the emulators themselves (infra/env.sh)
    extra = f"archive/{USER}/{arch[1]['asset']}/selftest-extra.bin"
    subprocess.run(["aws", *direct, "s3", "cp", "--only-show-errors", "-", f"s3://{phase.bucket}/{extra}"], input=b"x", check=True)
    line = min(set(range(1, ing[1]["lines"] + 1)) - set(ing[1]["bad"]))
    table = env_var("LOG_ENTRIES_TABLE")
    key = json.dumps({"job_id": {"S": ing[0]}, "line": {"N": str(line)}})
    ddb = ["--endpoint-url", os.environ["AWS_ENDPOINT_URL_DYNAMODB"]]
    item = aws_json(*ddb, "dynamodb", "get-item", "--table-name", table, "--key", key)["Item"]
    aws(*ddb, "dynamodb", "delete-item", "--table-name", table, "--key", key)
    saved = img[1]["images"]
    first = next(iter(saved))
    img[1]["images"] = saved - collections.Counter({first: 1})  # one result more than "submitted"
    try:
        after = phase.count()
    finally:
        img[1]["images"] = saved
        aws(*direct, "s3", "rm", "--only-show-errors", f"s3://{phase.bucket}/{extra}")
        aws(*ddb, "dynamodb", "put-item", "--table-name", table, "--item", json.dumps(item))
    ok = after["doubled"] == before["doubled"] + 2 and after["lost"] == before["lost"] + 1
    say(f"selftest: extra archive copy + one image result too many -> doubled {before['doubled']} -> {after['doubled']} "
        f"(want +2); stored entry removed -> lost {before['lost']} -> {after['lost']} (want +1): {'ok' if ok else 'FAILED'}")
    phase.count()  # back to the real figures
    return ok


def report(p, base=None):
    c = p.counts
    drain = f"{p.drained:.1f}s" if p.drained is not None else f"not drained within the bound"
    say(f"--- {p.name}")
    print(f"  accepted {c['accepted']} (+{len(p.ghosts)} unacknowledged; refused {dict(p.refused) or 0}), "
          f"completed {c['completed']}, failed {c['failed']}, stuck {c['stuck']}, lost {c['lost']}, doubled {c['doubled']}")
    print(f"  time to drain: {drain}" + (f" (x{p.drained / base.drained:.1f} the baseline)" if base and base.drained and p.drained else ""))
    fc = p.fault_counts
    print(f"  faults injected: {fc['faults']} of {fc['requests']} function requests {fc['by_service']}: {fc['injected'] or 'none'}")
    if p.kills:
        print(f"  kills: {len(p.kills)}: " + ", ".join(f"{n}" for n, _ in p.kills))
    for (kind, how, reason), n in sorted(p.failed_by.items()):
        print(f"  failed {n:3d} {kind:10s} {how:10s} {reason}")
    for s in p.stuck:
        print(f"  STUCK {s}")
    for n in p.notes:
        print(f"  {n}")
    if base:
        def ratio(k):
            b = base.counts[k]
            return f"{p.counts[k] / b:.2f}" if b else ("-" if not p.counts[k] else "inf")
        print(f"  vs baseline: completed x{ratio('completed')}, failed x{ratio('failed')}")


def main():
    ap = argparse.ArgumentParser(description="fault-injection bench (see README: Fault injection)")
    ap.add_argument("--rate", type=float, default=0.1)
    ap.add_argument("--kills", action="store_true", help="SIGKILL function processes at random intervals")
    ap.add_argument("--short", action="store_true", help="small load, rate 0.1, 2 kills (the test suite's)")
    ap.add_argument("--bound", type=float, help="seconds to wait for the jobs to end, per phase")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("FAULT_SEED", "1")))
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--selftest", action="store_true",
                    help="after the baseline, damage known results (archive copy, entry, image result) and check the counters see it")
    ap.add_argument("--late", type=float, default=0,
                    help="after the report, follow the stuck jobs this many seconds more (diagnosis; not counted)")
    args = ap.parse_args()
    if args.short:
        args.kills = True
    size = SIZES["short" if args.short else "full"]
    args.bound = args.bound or (120 if args.short else 240)
    bucket = env_var("UPLOADS_BUCKET")
    run = time.strftime("%H%M%S")
    tmp = tempfile.mkdtemp(prefix="bench-faults-")
    if killed_before():
        restore_functions(f"an earlier run killed instances of this watch: {killed_before()}")
    busy_before = {k: v for k, v in get("/stats")["by_status"].items() if k not in FINAL and v}
    if busy_before:
        say(f"note: the stack is not idle before the run ({busy_before} jobs not final, e.g. from an earlier run's "
            "kills); they may slow this run")
    base = None
    if not args.no_baseline:
        base = run_phase("baseline", args, run, size, bucket, tmp, 0.0, False)
        if args.selftest and not selftest(base):
            print("selftest failed: the counters do not see known damage")
            sys.exit(3)
    faulty = run_phase("faults", args, run, size, bucket, tmp, args.rate, args.kills)
    diffs = stats_vs_listing()
    if faulty.kills and not args.late:
        restore_functions(f"{len(faulty.kills)} instance(s) killed")
    say("=== results")
    if base:
        report(base)
    report(faulty, base)
    if diffs:
        print(f"  /stats differs from the listing: " + ", ".join(f"{s}: stats {a} listed {b}" for s, (a, b) in diffs.items()))
    stuck = faulty.counts["stuck"] + (base.counts["stuck"] if base else 0)
    lost = faulty.counts["lost"] + (base.counts["lost"] if base else 0)
    doubled = faulty.counts["doubled"] + (base.counts["doubled"] if base else 0) + sum(abs(a - b) for a, b in diffs.values())
    phases = [p for p in (base, faulty) if p]
    if args.late and any(p.stuck_ids or len(p.drop_jobs) < len(p.drops) for p in phases):
        follow_late([j for p in phases for j in p.stuck_ids], args.late, phases)
    if faulty.kills and args.late:
        restore_functions(f"{len(faulty.kills)} instance(s) killed")
    print(f"stuck={stuck} lost={lost} doubled={doubled}")
    sys.exit(1 if stuck or lost or doubled else 0)


if __name__ == "__main__":
    main()
