"""Reading the Perfetto traces erpscope writes: decoded by protoc against the
project's subset of Perfetto's schema (tests/perfetto/perfetto_trace_subset.proto),
parsed from protoc's text format into nested dicts of lists."""

import os
import subprocess

PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "perfetto")
PROTO = "perfetto_trace_subset.proto"


def decode(data):
    """protoc --decode=perfetto.protos.Trace; raises on anything protoc refuses."""
    r = subprocess.run(["protoc", f"--proto_path={PROTO_DIR}", "--decode=perfetto.protos.Trace",
                        PROTO], input=data, capture_output=True, timeout=120)
    if r.returncode != 0 or r.stderr:
        raise ValueError(f"protoc refused the trace: rc={r.returncode} {r.stderr[:500]!r}")
    return parse(r.stdout.decode())


def _value(v):
    if v.startswith('"'):
        return bytes(v[1:-1], "latin-1").decode("unicode_escape").encode("latin-1").decode(
            "utf-8", "replace")
    try:
        return int(v)
    except ValueError:
        return v


def parse(text):
    """Text format to {field: [values]}; nested messages are dicts."""
    root = {}
    stack = [root]
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line == "}":
            stack.pop()
        elif line.endswith("{"):
            d = {}
            stack[-1].setdefault(line[:-1].strip(), []).append(d)
            stack.append(d)
        else:
            k, v = line.split(":", 1)
            stack[-1].setdefault(k.strip(), []).append(_value(v.strip()))
    if len(stack) != 1:
        raise ValueError("unbalanced protoc output")
    return root


def one(d, k, default=None):
    v = d.get(k)
    return v[0] if v else default


def _interned(packets):
    """Resolves the sequence's interned data in stream order, as trace_processor
    does: a TrackEvent's name_iid and a DebugAnnotation's name_iid become name,
    its string_value_iid string_value;
    a PerfSample gains frames (its callstack's function names, outermost first).
    A reference to an iid not defined before (or in) its packet raises.
    Returns {"inline": TrackEvent and annotation names written as strings,
    "defined": {table: entries defined}}."""
    stats = {"inline": 0, "defined": {}}
    tables = {k: {} for k in ("event_names", "debug_annotation_names", "function_names",
                              "frames", "callstacks", "mapping_paths", "mappings",
                              "debug_annotation_string_values")}
    for p in packets:
        if one(p, "sequence_flags", 0) & 1:
            for t in tables.values():
                t.clear()
        for idata in p.get("interned_data", []):
            for k, t in tables.items():
                for e in idata.get(k, []):
                    t[one(e, "iid")] = e
                    stats["defined"][k] = stats["defined"].get(k, 0) + 1
        uses = False
        e = one(p, "track_event")
        if e:
            stats["inline"] += ("name" in e) + sum("name" in a for a in
                                                   e.get("debug_annotations", []))
            if one(e, "name_iid") is not None:
                e["name"] = [one(tables["event_names"][one(e, "name_iid")], "name")]
                uses = True
            for a in e.get("debug_annotations", []):
                if one(a, "name_iid") is not None:
                    a["name"] = [one(tables["debug_annotation_names"][one(a, "name_iid")],
                                     "name")]
                    uses = True
                if one(a, "string_value_iid") is not None:
                    a["string_value"] = [one(tables["debug_annotation_string_values"][
                        one(a, "string_value_iid")], "str")]
                    uses = True
        s = one(p, "perf_sample")
        if s:
            cs = tables["callstacks"][one(s, "callstack_iid")]
            s["frames"] = [one(tables["function_names"][one(
                tables["frames"][f], "function_name_id")], "str")
                for f in cs.get("frame_ids", [])]
            for f in cs.get("frame_ids", []):
                tables["mappings"][one(tables["frames"][f], "mapping_id")]
            uses = True
        if uses and not one(p, "sequence_flags", 0) & 2:
            raise ValueError(f"a packet uses interned data without SEQ_NEEDS_INCREMENTAL_STATE: {p}")
    return stats


class Trace:
    """What the tests ask of a trace: tracks, thread states, slices, flows,
    CPU samples."""

    def __init__(self, data):
        self.msg = decode(data)
        self.packets = self.msg.get("packet", [])
        self.interning = _interned(self.packets)
        self.processes = {}   # pid -> name
        self.threads = {}     # tid -> (pid, name)
        self.track_tid = {}   # uuid -> tid
        for p in self.packets:
            td = one(p, "track_descriptor")
            if not td:
                continue
            if one(td, "process"):
                pr = one(td, "process")
                self.processes[one(pr, "pid")] = one(pr, "process_name")
            if one(td, "thread"):
                th = one(td, "thread")
                self.threads[one(th, "tid")] = (one(th, "pid"), one(th, "thread_name"))
                self.track_tid[one(td, "uuid")] = one(th, "tid")
        self.track_pid = {}   # process track uuid -> pid
        for p in self.packets:
            td = one(p, "track_descriptor")
            if td and one(td, "process"):
                self.track_pid[one(td, "uuid")] = one(one(td, "process"), "pid")
        self.slices = self._slices()
        self.instants = []
        for p in self.packets:
            e = one(p, "track_event")
            if e and one(e, "type") == "TYPE_INSTANT":
                self.instants.append(dict(
                    ts=one(p, "timestamp"), name=one(e, "name"),
                    track_pid=self.track_pid.get(one(e, "track_uuid")),
                    args={one(a, "name"): one(a, "string_value", one(a, "uint_value"))
                          for a in e.get("debug_annotations", [])}))

    def samples(self, tid):
        """[(ts, cpu, [function names, outermost first])] of one thread's CPU samples."""
        out = []
        for p in self.packets:
            s = one(p, "perf_sample")
            if s and one(s, "tid") == tid:
                out.append((one(p, "timestamp"), one(s, "cpu"), s["frames"]))
        return sorted(out, key=lambda x: x[0])

    def generic_states(self, tid):
        """[(ts, state, cpu)] of one thread's GenericKernelTaskStateEvents, in time order."""
        out = []
        for p in self.packets:
            e = one(p, "generic_kernel_task_state_event")
            if e and one(e, "tid") == tid:
                out.append((one(p, "timestamp"), one(e, "state"), one(e, "cpu")))
        return sorted(out, key=lambda x: x[0])

    def states(self, tid):
        """[(ts, state, cpu)] of one thread, in time order, as trace_processor
        makes them: its generic states, and a sched_waking of it that finds it
        asleep (S or D), or before its first state, begins a runnable state."""
        out = []
        wakes = sorted(x[0] for x in self.ftrace("sched_waking") if one(x[3], "pid") == tid)
        for st in self.generic_states(tid):
            while wakes and wakes[0] < st[0]:
                if not out or out[-1][1] in ("TASK_STATE_INTERRUPTIBLE_SLEEP",
                                             "TASK_STATE_UNINTERRUPTIBLE_SLEEP"):
                    out.append((wakes[0], "TASK_STATE_RUNNABLE", None))
                wakes.pop(0)
            out.append(st)
        return out

    def ftrace(self, name):
        """[(monotonic ts, cpu, pid, event)] of the ftrace events called name
        (their BOOTTIME stamps put on the trace's MONOTONIC clock with the
        ClockSnapshot), in time order."""
        snap = next(one(p, "clock_snapshot") for p in self.packets if one(p, "clock_snapshot"))
        clk = {one(c, "clock_id"): one(c, "timestamp") for c in snap["clocks"]}
        off = clk[6] - clk[3]
        out = []
        for p in self.packets:
            for b in p.get("ftrace_events", []):
                for e in b.get("event", []):
                    r = one(e, name)
                    if r:
                        out.append((one(e, "timestamp") - off, one(b, "cpu"), one(e, "pid"), r))
        return sorted(out, key=lambda x: x[0])

    def io_wait(self, tid):
        """{monotonic ts: io_wait} of one thread's sched_blocked_reason ftrace events."""
        return {ts: bool(one(r, "io_wait", 0)) for ts, _, _, r in self.ftrace("sched_blocked_reason")
                if one(r, "pid") == tid}

    def d_seconds(self, tid, t0=0, t1=1 << 63):
        """Seconds of uninterruptible sleep within [t0, t1], split as the UI
        does: {"io": ..., "non-io": ..., "unknown": ...}, each D state taking
        the io_wait of the sched_blocked_reason stamped 1 ns after it."""
        flags = self.io_wait(tid)
        s = self.states(tid)
        out = {"io": 0.0, "non-io": 0.0, "unknown": 0.0}
        for (a, st, _), (b, _, _) in zip(s, s[1:]):
            if st != "TASK_STATE_UNINTERRUPTIBLE_SLEEP":
                continue
            f = flags.get(a + 1)
            k = "unknown" if f is None else "io" if f else "non-io"
            out[k] += max(0, min(b, t1) - max(a, t0)) / 1e9
        return out

    def state_seconds(self, tid):
        """Seconds per state between consecutive events (the last one open: not counted)."""
        s = self.states(tid)
        tot = {}
        for (t0, st, _), (t1, _, _) in zip(s, s[1:]):
            tot[st] = tot.get(st, 0.0) + (t1 - t0) / 1e9
        return tot

    def _slices(self):
        """Slices from BEGIN/END pairs per track: dicts with tid, name, start, end,
        flows (flow_ids), ends (terminating_flow_ids), args."""
        open_, out = {}, []
        for p in sorted(self.packets, key=lambda p: one(p, "timestamp", 0)):
            e = one(p, "track_event")
            if not e:
                continue
            track = one(e, "track_uuid")
            if one(e, "type") == "TYPE_SLICE_BEGIN":
                args = {one(a, "name"): one(a, "string_value", one(a, "uint_value"))
                        for a in e.get("debug_annotations", [])}
                open_.setdefault(track, []).append(dict(
                    tid=self.track_tid.get(track), name=one(e, "name"),
                    start=one(p, "timestamp"), flows=e.get("flow_ids", []),
                    ends=e.get("terminating_flow_ids", []), args=args))
            elif one(e, "type") == "TYPE_SLICE_END" and open_.get(track):
                s = open_[track].pop()
                s["end"] = one(p, "timestamp")
                s["seconds"] = (s["end"] - s["start"]) / 1e9
                out.append(s)
        return out
