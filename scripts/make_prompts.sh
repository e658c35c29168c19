#!/bin/sh
# Regenerate the built-in voice prompts in bridge/prompts/ (committed; run only when wording changes).
# Needs espeak-ng and sox. Output: 16 kHz mono 16-bit WAV, leading/trailing silence trimmed and
# pauses inside a sentence capped at 150 ms (16-bit 16 kHz costs 32 KB per second of speech),
# peak-normalised to -3 dBFS, with 5 ms fades (applied at each end before reversing) so a prompt never starts or ends with a click.
set -eu

OUT="${1:-$(dirname "$0")/../bridge/prompts}"
VOICE="${VOICE:-en-us}"
SPEED="${SPEED:-160}"   # words per minute; a little under espeak's 175 default, clearer on a phone
mkdir -p "$OUT"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

say() {
    name="$1"; text="$2"
    espeak-ng -v "$VOICE" -s "$SPEED" -w "$TMP/$name.wav" "$text"
    # silence effect twice with reverse: trim below 0.3 % at both ends.
    sox "$TMP/$name.wav" -r 16000 -c 1 -b 16 -e signed-integer "$OUT/$name.wav" \
        gain -n -3 silence -l 1 0.01 0.3% -1 0.15 0.3% fade t 0.005 \
        reverse silence 1 0.01 0.3% fade t 0.005 reverse
}

say welcome "Welcome to the conference bridge."
say enter_code "Please enter your conference code, followed by the pound key."
say enter_pin "Please enter the conference PIN, followed by the pound key."
say bad_pin "That PIN is not valid. Please try again."
say bad_code "That conference code is not valid. Please try again."
say goodbye "Goodbye."
say too_many_attempts "Too many attempts. Goodbye."
say alone "You are currently the only person in this conference."
say wait_moderator "Please wait, the conference will begin when the host arrives."
say not_started "This conference has not started yet. Please call back later."
say ended "This conference has ended. Goodbye."
say room_full "This conference is full. Goodbye."
say muted "You are now muted."
say unmuted "You are now unmuted."
say locked "The conference is locked."
say unlocked "The conference is unlocked."
say room_locked "This conference is locked. Goodbye."
say listeners_muted "All listeners are muted."
say listeners_unmuted "All listeners are unmuted."
say joined "A participant has joined."
say left "A participant has left."
# "There are" <digits> "participants." announces the count (*3 on the keypad).
say there_are "There are"
say participants "participants."
for d in 0 1 2 3 4 5 6 7 8 9; do
    say "digit_$d" "$d"
done
