"""Real SIP peers for end-to-end tests: baresip 1.0 softphones and SIPp 3.6.1.

Modules: ports (bind-tested port blocks), audio (WAV + tone detectors), baresip
(ctrl_tcp driver), sipp (runner + result parsing), rtp_pcap (RFC 4733 pcaps for
play_pcap_audio), netstring, fixtures (pytest fixtures for a conftest).

Behaviour checked on a Debian 12 machine (Debian packages baresip-core 1.0.0 and
sip-tester 3.6.1; scripts/test.sh installs them):
- baresip: ``audio_player alsa,null`` spins two cores, so ``aubridge,nil`` is used;
  ``net_interface lo`` fails, ``127.0.0.1`` works; the aufile WAV must match the codec
  exactly (8 kHz mono PCMU/PCMA, 16 kHz mono G722, 48 kHz stereo opus) and the call ends
  when it ends; baresip also binds SIP port + 1 (TLS), so instances sit 2 ports apart.
- Auto-answer: account parameter ``;answermode=auto`` (``Baresip(auto_answer=True)``).
  Without it an incoming call raises CALL_INCOMING and the ctrl_tcp ``accept``
  command answers it. baresip sends 180 Ringing without a 100 Trying.
- ctrl_tcp responses are ``{"response":true,"ok":..,"data":..,"token":..}``; events
  are ``{"event":true,"type":..,"param":..,"id":..,"direction":..,"peeruri":..}``.
  Types seen: CALL_INCOMING, CALL_RINGING, CALL_LOCAL_SDP/CALL_REMOTE_SDP (param
  offer/answer), CALL_ESTABLISHED, CALL_RTPESTAB, CALL_RTCP, CALL_DTMF_START (param
  = digit, for both RFC 4733 and SIP INFO), CALL_DTMF_END, AUDIO_ERROR ("0,end of
  file" when the aufile ends), CALL_CLOSED (param "end of file", "Connection reset
  by user" after our hangup, "Connection reset by peer" after the far end's BYE).
- sndfile dumps are ``<snd_path>/dump-YYYY-MM-DD-HH-MM-SS-{dec,enc}.wav``, 16-bit PCM at
  the codec's rate (PCMU 8000/1, G722 16000/1, opus 48000/2 checked), named when the
  audio stream starts. They
  are already finalised (RIFF sizes correct) when CALL_CLOSED arrives. Two calls
  starting in the same second overwrite one file. The dec dump holds decoded frames
  only: time without received RTP (e.g. hold) is missing, not silence, so file
  offsets are not wall-clock offsets.
- SIPp: ``[next_url]`` is empty unless the recv that carried the Contact has
  ``rrs="true"``; an optional <recv> directly before a <send>/<pause>/<nop> is
  refused at load time; response codes in <send> are validated before ``-key``
  substitution; play_pcap_audio resolves relative paths against SIPp's cwd (the
  run's workdir) and replays the RTP headers unchanged.
- /usr/share/sip-tester/dtmf_2833_5.pcap is one digit '5': event 5, volume 10,
  PT 101, SSRC 0x0e05384e, seq 8155-8162, timestamp 43200, durations 0..1920 then
  three end packets (E bit, duration 2240 = 280 ms, same seq 8162).
"""
