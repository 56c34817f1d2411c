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


class Trace:
    """What the tests ask of a trace: tracks, thread states, slices, flows."""

    def __init__(self, data):
        self.msg = decode(data)
        self.packets = self.msg.get("packet", [])
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

    def states(self, tid):
        """[(ts, state, cpu)] of one thread, in time order."""
        out = []
        for p in self.packets:
            e = one(p, "generic_kernel_task_state_event")
            if e and one(e, "tid") == tid:
                out.append((one(p, "timestamp"), one(e, "state"), one(e, "cpu")))
        return sorted(out, key=lambda x: x[0])

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
