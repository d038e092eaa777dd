#!/usr/bin/env python3
"""Publish-to-play latency of an RTMP server, measured from outside.

Independent of the server's own code (nothing of src/ or bench/lib is used):
a plain-socket RTMP publisher and a plain-socket RTMP player in one Python
thread. Every audio/video message carries a sequence number in its payload;
the time from just before the publisher's sendall() to the moment the last
byte of that message is read on the player's socket is its latency. One
thread: after each send the tool waits on the player's socket (select) until
the next message is due, so each delay is what the server and the loopback
add, plus the same Python overhead for any server.

  python3 bench/latency-probe.py --url rtmp://127.0.0.1:1935/live/lat --seconds 20 --json out.json

Media: H.264-shaped video at 30 fps (~4 KB frames, a ~30 KB keyframe every
2 s: ~1 Mbit/s) and AAC-shaped audio at 43 messages/s (372 bytes), in
timestamp order at real time, after a sequence header of each kind. The
first --warmup seconds are not counted.
"""
import argparse
import json
import os
import select
import socket
import struct
import sys
import time

CHUNK_OUT = 4096


def amf_num(v):
    return b'\x00' + struct.pack('>d', float(v))


def amf_str(s):
    b = s.encode()
    return b'\x02' + struct.pack('>H', len(b)) + b


def amf_null():
    return b'\x05'


def amf_obj(d):
    out = b'\x03'
    for k, v in d.items():
        kb = k.encode()
        out += struct.pack('>H', len(kb)) + kb
        out += amf_str(v) if isinstance(v, str) else amf_num(v)
    return out + b'\x00\x00\x09'


def chunks(csid, mtype, sid, ts, payload, size=CHUNK_OUT):
    """One message as chunks: a type 0 header, then type 3 continuations."""
    ext = ts >= 0xFFFFFF
    head = bytes([csid]) + (0xFFFFFF if ext else ts).to_bytes(3, 'big') + len(payload).to_bytes(3, 'big') + bytes([mtype]) + struct.pack('<I', sid)
    if ext:
        head += struct.pack('>I', ts)
    out = [head, payload[:size]]
    for i in range(size, len(payload), size):
        out.append(bytes([0xC0 | csid]) + (struct.pack('>I', ts) if ext else b''))
        out.append(payload[i:i + size])
    return b''.join(out)


class Reader:
    """Incoming chunk stream -> messages (type, stream id, timestamp, payload)."""

    def __init__(self):
        self.buf = bytearray()
        self.size = 128
        self.cs = {}
        self.total = 0

    def feed(self, data):
        self.total += len(data)
        self.buf += data
        msgs = []
        buf = self.buf
        pos = 0
        n = len(buf)
        while pos < n:
            b0 = buf[pos]
            fmt = b0 >> 6
            csid = b0 & 0x3F
            p = pos + 1
            if csid == 0:
                if n < p + 1:
                    break
                csid = 64 + buf[p]
                p += 1
            elif csid == 1:
                if n < p + 2:
                    break
                csid = 64 + buf[p] + buf[p + 1] * 256
                p += 2
            mh = (11, 7, 3, 0)[fmt]
            if n < p + mh:
                break
            st = self.cs.get(csid)
            if st is None:
                st = {'ts': 0, 'delta': 0, 'len': 0, 'type': 0, 'sid': 0, 'ext': False, 'data': bytearray()}
            ts_field = None
            length, mtype, sid = st['len'], st['type'], st['sid']
            if fmt <= 2:
                ts_field = int.from_bytes(buf[p:p + 3], 'big')
            if fmt <= 1:
                length = int.from_bytes(buf[p + 3:p + 6], 'big')
                mtype = buf[p + 6]
            if fmt == 0:
                sid = struct.unpack_from('<I', buf, p + 7)[0]
            p += mh
            ext = st['ext'] if fmt == 3 else ts_field == 0xFFFFFF
            if ext:
                if n < p + 4:
                    break
                ext_val = struct.unpack_from('>I', buf, p)[0]
                p += 4
                if ts_field is not None:
                    ts_field = ext_val
            starting = len(st['data']) == 0
            want = min(self.size, length - len(st['data']))
            if n < p + want:
                break
            # the whole chunk is here: commit the header
            st['ext'] = ext
            st['len'], st['type'], st['sid'] = length, mtype, sid
            if fmt == 0:
                st['ts'] = ts_field
                st['delta'] = 0
            elif fmt in (1, 2):
                st['delta'] = ts_field
                if starting:
                    st['ts'] = (st['ts'] + ts_field) & 0xFFFFFFFF
            elif starting:
                st['ts'] = (st['ts'] + st['delta']) & 0xFFFFFFFF
            st['data'] += buf[p:p + want]
            p += want
            pos = p
            self.cs[csid] = st
            if len(st['data']) == length:
                payload = bytes(st['data'])
                st['data'] = bytearray()
                if mtype == 1 and len(payload) >= 4:
                    self.size = struct.unpack('>I', payload[:4])[0] & 0x7FFFFFFF
                msgs.append((mtype, sid, st['ts'], payload))
        del buf[:pos]
        return msgs


class Conn:
    def __init__(self, host, port, label):
        self.label = label
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = Reader()
        self.window = 0
        self.acked = 0
        self.pending = []
        self.txn = 0

    def send(self, data):
        self.sock.sendall(data)

    def handshake(self):
        c1 = struct.pack('>II', 0, 0) + os.urandom(1528)
        self.send(b'\x03' + c1)
        s = b''
        while len(s) < 1 + 1536 + 1536:
            d = self.sock.recv(65536)
            if not d:
                raise RuntimeError(f'{self.label}: closed during handshake')
            s += d
        self.send(s[1:1 + 1536])
        rest = s[1 + 1536 + 1536:]
        if rest:
            self.pending += self.reader.feed(rest)
        self.send(chunks(2, 1, 0, 0, struct.pack('>I', CHUNK_OUT)))

    def poll(self, timeout):
        """Reads what is there (waiting up to timeout s); returns the media messages with their arrival time."""
        out = []
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return out
        d = self.sock.recv(1 << 20)
        now = time.perf_counter_ns()
        if not d:
            raise RuntimeError(f'{self.label}: the server closed the connection')
        for m in self.pending + self.reader.feed(d):
            self.control(m)
            out.append((now, m))
        self.pending = []
        if self.window and self.reader.total - self.acked >= self.window // 2:
            self.acked = self.reader.total
            self.send(chunks(2, 3, 0, 0, struct.pack('>I', self.acked & 0xFFFFFFFF)))
        return out

    def control(self, m):
        mtype, _, _, payload = m
        if mtype == 5 and len(payload) >= 4:
            self.window = struct.unpack('>I', payload[:4])[0]
        elif mtype == 4 and len(payload) >= 6 and struct.unpack('>H', payload[:2])[0] == 6:
            self.send(chunks(2, 4, 0, 0, struct.pack('>H', 7) + payload[2:6]))

    def command(self, sid, name, *args):
        self.txn += 1
        body = amf_str(name) + amf_num(self.txn) + b''.join(args)
        self.send(chunks(3 if sid == 0 else 8, 20, sid, 0, body))
        return self.txn

    def wait_command(self, pred, timeout=10.0):
        end = time.time() + timeout
        while time.time() < end:
            for _, m in self.poll(0.2):
                if m[0] == 20 and pred(m[3]):
                    return m[3]
        raise RuntimeError(f'{self.label}: no expected reply within {timeout} s')

    def setup(self, app, tc_url):
        self.handshake()
        self.command(0, 'connect', amf_obj({'app': app, 'type': 'nonprivate', 'flashVer': 'FMLE/3.0 (latency-probe)', 'tcUrl': tc_url}))
        self.wait_command(lambda p: p.startswith(amf_str('_result')))
        txn = self.command(0, 'createStream', amf_null())
        reply = self.wait_command(lambda p: p.startswith(amf_str('_result') + amf_num(txn)))
        # _result, txn, null, stream id (a number)
        return int(struct.unpack('>d', reply[len(reply) - 8:])[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--url', required=True)
    ap.add_argument('--seconds', type=float, default=20)
    ap.add_argument('--warmup', type=float, default=3)
    ap.add_argument('--json')
    ap.add_argument('--label', default='')
    ap.add_argument('--key-bytes', type=int, default=30000, help='keyframe payload size (every 60th video frame)')
    ap.add_argument('--frame-bytes', type=int, default=4000, help='other video frames')
    a = ap.parse_args()
    rest = a.url[len('rtmp://'):]
    hostport, app, name = rest.split('/', 2)
    host, port = hostport.rsplit(':', 1)
    tc_url = f'rtmp://{hostport}/{app}'

    pub = Conn(host, int(port), 'publisher')
    psid = pub.setup(app, tc_url)
    pub.command(psid, 'publish', amf_null(), amf_str(name), amf_str('live'))
    pub.wait_command(lambda p: b'Publish.Start' in p)

    play = Conn(host, int(port), 'player')
    ssid = play.setup(app, tc_url)
    play.command(ssid, 'play', amf_null(), amf_str(name))

    avcc = bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 4, 0x67, 0x64, 0, 0x1F, 1, 0, 4, 0x68, 0xEE, 0x3C, 0x80])
    pub.send(chunks(6, 9, psid, 0, bytes([0x17, 0, 0, 0, 0]) + avcc))
    pub.send(chunks(4, 8, psid, 0, bytes([0xAF, 0, 0x12, 0x10])))

    start = time.perf_counter_ns()
    sent = {}
    delays = []
    seq = 0
    v = a_ = 0
    deadline = a.warmup + a.seconds
    measure_from = None
    unmatched = 0
    filler = os.urandom(max(a.key_bytes, a.frame_bytes, 400))
    kinds = {}
    by_kind = {'audio': [], 'inter': [], 'key': []}
    while True:
        vt = v * 1000 / 30
        at = a_ * 1024000 / 44100
        kind_video = vt <= at
        ts_ms = vt if kind_video else at
        if ts_ms / 1000 > deadline:
            break
        due = start + int(ts_ms * 1e6)
        # wait for the player until this message is due
        while True:
            now = time.perf_counter_ns()
            if now >= due:
                break
            for t, m in play.poll((due - now) / 1e9):
                if m[0] in (8, 9):
                    p = m[3]
                    off = 5 if m[0] == 9 else 2
                    if len(p) < off + 4:
                        continue
                    s = struct.unpack_from('>I', p, off)[0]
                    t0 = sent.pop(s, None)
                    if t0 is None:
                        unmatched += 1
                    elif measure_from is not None and t0 >= measure_from:
                        delays.append((t - t0) / 1e6)
                        by_kind[kinds[s]].append((t - t0) / 1e6)
        seq += 1
        if kind_video:
            key = v % 60 == 0
            size = a.key_bytes if key else a.frame_bytes
            payload = bytes([0x17 if key else 0x27, 1, 0, 0, 0]) + struct.pack('>I', seq) + filler[:size]
            msg = chunks(6, 9, psid, int(ts_ms), payload)
            v += 1
        else:
            payload = bytes([0xAF, 1]) + struct.pack('>I', seq) + filler[:366]
            msg = chunks(4, 8, psid, int(ts_ms), payload)
            a_ += 1
        if measure_from is None and ts_ms / 1000 >= a.warmup:
            measure_from = time.perf_counter_ns()
        kinds[seq] = 'audio' if not kind_video else ('key' if key else 'inter')
        sent[seq] = time.perf_counter_ns()
        pub.send(msg)
        # drain the publisher's socket (acks, pings) without blocking
        pub.poll(0)
    # the last messages
    end = time.perf_counter_ns() + 200_000_000
    while time.perf_counter_ns() < end and sent:
        for t, m in play.poll(0.05):
            if m[0] in (8, 9):
                off = 5 if m[0] == 9 else 2
                s = struct.unpack_from('>I', m[3], off)[0] if len(m[3]) >= off + 4 else -1
                t0 = sent.pop(s, None)
                if t0 is not None and measure_from is not None and t0 >= measure_from:
                    delays.append((t - t0) / 1e6)
                    by_kind[kinds[s]].append((t - t0) / 1e6)
    lost = sum(1 for s, t0 in sent.items() if measure_from is not None and t0 >= measure_from)
    delays.sort()

    def pct(q):
        if not delays:
            return None
        return round(delays[min(len(delays) - 1, int(q / 100 * len(delays)))], 3)

    res = {
        'label': a.label, 'url': a.url, 'samples': len(delays), 'lost': lost, 'unmatched': unmatched,
        'p50': pct(50), 'p90': pct(90), 'p99': pct(99), 'p999': pct(99.9),
        'max': round(delays[-1], 3) if delays else None,
        'mean': round(sum(delays) / len(delays), 3) if delays else None,
    }
    for k, ds in by_kind.items():
        ds.sort()
        if ds:
            res[k] = {'n': len(ds), 'p50': round(ds[len(ds) // 2], 3), 'p90': round(ds[int(0.9 * len(ds))], 3), 'max': round(ds[-1], 3)}
    print(json.dumps(res))
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(res, f)
    return 0


if __name__ == '__main__':
    sys.exit(main())
