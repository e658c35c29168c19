// The join page: one WebRTC audio call to the bridge, live state over server-sent events.
"use strict";
(() => {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const $ = (id) => document.getElementById(id);
  const base = `/conferences/${encodeURIComponent(boot.id)}/join`;
  let pc = null, stream = null, session = null, events = null, muted = false, timers = [];
  let audioCtx = null, state = { participants: [], locked: false, recording: false };

  // -- lobby ----------------------------------------------------------------------------------
  if (boot.member_pin || boot.moderator_pin) {
    $("pin-row").hidden = false;
    $("pin-label").textContent = boot.member_pin ? "PIN" : "Moderator PIN (optional)";
    $("pin-help").textContent = boot.member_pin
      ? "Enter the conference PIN from your invitation."
      : "Moderators enter their PIN; everyone else can leave this empty.";
    if (boot.member_pin) $("pin").required = true;
  }
  $("name").value = localStorage.getItem("tutti-name") || "";
  ($("name").value ? ($("pin-row").hidden ? $("join") : $("pin")) : $("name")).focus();

  function showError(text) {
    const el = $("join-error");
    el.textContent = text;
    el.hidden = !text;
  }

  function show(section) {
    for (const id of ["lobby", "call", "ended"]) $(id).hidden = id !== section;
  }

  async function waitForIce(conn) {
    if (conn.iceGatheringState === "complete") return;
    await new Promise((resolve) => {
      const t = setTimeout(resolve, 3000);   // send what we have: the bridge is a full ICE agent
      conn.addEventListener("icegatheringstatechange", () => {
        if (conn.iceGatheringState === "complete") { clearTimeout(t); resolve(); }
      });
    });
  }

  $("join-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = $("name").value.trim();
    if (!name) { showError("Please enter your name."); $("name").focus(); return; }
    if (boot.member_pin && !$("pin").value.trim()) { showError("Please enter the PIN."); $("pin").focus(); return; }
    showError("");
    $("join").disabled = true;
    $("join").textContent = "Joining…";
    try {
      localStorage.setItem("tutti-name", name);
      await join(name, $("pin").value.trim());
    } catch (err) {
      await hangup();
      showError(err.message || String(err));
      $("pin").value = "";
      ($("pin-row").hidden ? $("name") : $("pin")).focus();
    } finally {
      $("join").disabled = false;
      $("join").textContent = "Join";
    }
  });

  async function join(name, pin) {
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (err) {
      throw new Error("The microphone is not available: allow it in the browser and try again.");
    }
    pc = new RTCPeerConnection({ iceServers: boot.ice_servers });
    for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
    pc.addEventListener("track", (ev) => { $("remote").srcObject = ev.streams[0] || new MediaStream([ev.track]); });
    pc.addEventListener("connectionstatechange", () => {
      if (pc && pc.connectionState === "failed") ended("The connection to the bridge was lost.");
    });
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIce(pc);
    const resp = await fetch(`${base}/session`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name, pin, sdp: pc.localDescription.sdp }),
    });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(body.message || `The bridge refused (${resp.status}).`);
    session = body;
    await pc.setRemoteDescription({ type: "answer", sdp: body.sdp });
    document.body.dataset.participant = body.participant_id;
    $("mod").hidden = !body.moderator;
    show("call");
    $("call-title").focus?.();
    listen();
    meter();
    timers.push(setInterval(quality, 2000));
  }

  // -- in the call ------------------------------------------------------------------------------
  function url(path) {
    return `${base}/session/${encodeURIComponent(session.participant_id)}/${path}`;
  }

  async function post(path, body) {
    const resp = await fetch(url(path), {
      method: "POST", headers: { "Content-Type": "application/json", "X-Session-Token": session.token },
      body: JSON.stringify(body || {}),
    });
    if (!resp.ok && resp.status !== 404) {
      const b = await resp.json().catch(() => ({}));
      announce(b.message || "That did not work.");
    }
  }

  function listen() {
    events = new EventSource(`${url("events")}?token=${encodeURIComponent(session.token)}`);
    events.addEventListener("state", (e) => render(JSON.parse(e.data)));
    events.addEventListener("ended", (e) => ended(JSON.parse(e.data).message));
  }

  function announce(text) { $("quality").textContent = text; }

  // Joins, leaves and mute changes are announced once; the talking indicator is visual only
  // (announcing every talk spurt would drown a screen reader).
  let known = null;
  function news(s) {
    const now = new Map(s.participants.map((p) => [p.id, p]));
    if (known) {
      const lines = [];
      for (const [id, p] of now) {
        const before = known.get(id);
        if (!before) lines.push(`${p.name} joined`);
        else if (before.muted !== p.muted) lines.push(`${p.me ? "You are" : p.name + " is"} ${p.muted ? "muted" : "unmuted"}`);
      }
      for (const [id, p] of known) if (!now.has(id)) lines.push(`${p.name} left`);
      if (s.locked !== state.locked) lines.push(s.locked ? "The conference is locked" : "The conference is unlocked");
      if (s.recording !== state.recording) lines.push(s.recording ? "Recording started" : "Recording stopped");
      if (lines.length) $("sr-news").textContent = lines.join(". ");
    }
    known = now;
  }

  function render(s) {
    news(s);
    state = s;
    const list = $("people");
    list.replaceChildren();
    const mod = session && session.moderator;
    for (const p of s.participants) {
      const li = document.createElement("li");
      li.dataset.id = p.id;
      if (p.talking) li.classList.add("talking");
      const av = document.createElement("span");
      av.className = "avatar"; av.setAttribute("aria-hidden", "true");
      av.textContent = (p.name || "?").trim().charAt(0).toUpperCase();
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = p.name + (p.me ? " (you)" : "");
      const small = document.createElement("small");
      small.textContent = p.kind === "webrtc" ? "Browser" : "Phone";
      if (p.role !== "member") small.textContent += ` · ${p.role}`;
      who.append(small);
      li.append(av, who);
      const tags = [];
      if (p.talking) tags.push(["talk", "Talking"]);
      if (p.muted) tags.push(["mute", "Muted"]);
      if (p.on_hold) tags.push(["", "On hold"]);
      for (const [cls, text] of tags) {
        const t = document.createElement("span");
        t.className = `tag ${cls}`; t.textContent = text; li.append(t);
      }
      if (mod && !p.me) {
        const m = document.createElement("button");
        m.type = "button"; m.textContent = p.muted ? "Unmute" : "Mute";
        m.setAttribute("aria-label", `${m.textContent} ${p.name}`);
        m.onclick = () => post("moderate", { action: p.muted ? "unmute_other" : "mute_other", participant_id: p.id });
        const k = document.createElement("button");
        k.type = "button"; k.textContent = "Remove"; k.setAttribute("aria-label", `Remove ${p.name}`);
        k.onclick = () => post("moderate", { action: "kick", participant_id: p.id });
        li.append(m, k);
      }
      list.append(li);
    }
    $("count").textContent = `(${s.participants.length})`;
    const me = s.participants.find((p) => p.me);
    if (me) setMuted(me.muted, false);
    $("rec").hidden = !s.recording;
    $("locked").hidden = !s.locked;
    $("lock").setAttribute("aria-pressed", String(s.locked));
    $("lock").textContent = s.locked ? "Unlock" : "Lock";
    $("record").setAttribute("aria-pressed", String(s.recording));
    $("record").textContent = s.recording ? "Stop recording" : "Record";
  }

  function setMuted(value, tell) {
    muted = value;
    if (stream) for (const t of stream.getAudioTracks()) t.enabled = !value;
    $("mute").textContent = value ? "Unmute" : "Mute";
    $("mute").setAttribute("aria-pressed", String(value));
    if (tell) post(value ? "mute" : "unmute");
  }

  $("mute").onclick = () => setMuted(!muted, true);
  $("leave").onclick = () => { post("leave"); ended("You left the conference."); };
  $("mute-all").onclick = () => post("moderate", { action: "mute_all" });
  $("unmute-all").onclick = () => post("moderate", { action: "unmute_all" });
  $("lock").onclick = () => post("moderate", { action: state.locked ? "unlock" : "lock" });
  $("record").onclick = () => post("moderate", { action: "record" });
  $("rejoin").onclick = () => { show("lobby"); $("name").focus(); };
  document.addEventListener("keydown", (e) => {
    if (e.key.toLowerCase() === "m" && e.altKey && !$("call").hidden) { e.preventDefault(); $("mute").click(); }
  });

  function meter() {
    audioCtx = new AudioContext();
    const src = audioCtx.createMediaStreamSource(stream);
    const an = audioCtx.createAnalyser();
    an.fftSize = 1024;
    src.connect(an);
    const buf = new Float32Array(an.fftSize);
    timers.push(setInterval(() => {
      an.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const v of buf) sum += v * v;
      const rms = Math.sqrt(sum / buf.length);
      $("meter").value = muted ? 0 : Math.min(1, rms * 3);
    }, 100));
  }

  async function quality() {
    if (!pc) return;
    let rtt = null, lost = 0, got = 0;
    (await pc.getStats()).forEach((r) => {
      if (r.type === "candidate-pair" && r.nominated && r.currentRoundTripTime != null) rtt = r.currentRoundTripTime;
      if (r.type === "inbound-rtp" && r.kind === "audio") { lost += r.packetsLost || 0; got += r.packetsReceived || 0; }
    });
    const loss = got + lost > 0 ? lost / (got + lost) : 0;
    const el = $("quality");
    const before = el.textContent;
    let level = "good", text = "Connection: good";
    if ((rtt != null && rtt > 0.6) || loss > 0.08) { level = "poor"; text = "Connection: poor"; }
    else if ((rtt != null && rtt > 0.3) || loss > 0.02) { level = "fair"; text = "Connection: fair"; }
    if (pc.connectionState !== "connected") { level = ""; text = "Connecting…"; }
    el.className = `pill ${level}`;
    if (text !== before) el.textContent = text;     // a live region: speak changes only
    el.title = `round trip ${rtt == null ? "?" : Math.round(rtt * 1000) + " ms"}, loss ${(loss * 100).toFixed(1)} %`;
  }

  async function hangup() {
    for (const t of timers) clearInterval(t);
    timers = [];
    if (events) events.close();
    if (pc) pc.close();
    if (stream) for (const t of stream.getTracks()) t.stop();
    if (audioCtx) audioCtx.close();
    events = pc = stream = audioCtx = null;
  }

  async function ended(message) {
    if (!$("ended").hidden) return;
    await hangup();
    $("ended-msg").textContent = message;
    known = null;
    document.body.dataset.ended = "1";
    show("ended");
    $("ended-title").focus();
  }
})();
