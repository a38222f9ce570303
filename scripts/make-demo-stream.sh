#!/usr/bin/env bash
# Regenerates demo/origin: a short test-pattern stream as HLS (MPEG-TS and fMP4 variants)
# and DASH, small enough to commit. Needs ffmpeg (Debian: apt-get install ffmpeg); the
# committed output is what the demo origin and the tests use, so this rarely runs.
set -euo pipefail
cd "$(dirname "$0")/.."
out=demo/origin
rm -rf "$out" && mkdir -p "$out/hls/ts" "$out/hls/fmp4" "$out/hls/live" "$out/dash" "$out/posters"
src=(-f lavfi -i "testsrc2=size=160x90:rate=15" -f lavfi -i "sine=frequency=440:sample_rate=22050" -t 8)
video=(-c:v libx264 -profile:v baseline -pix_fmt yuv420p -g 30 -keyint_min 30 -sc_threshold 0 -b:v 48k -maxrate 60k -bufsize 60k)
audio=(-c:a aac -b:a 24k -ac 1)
ffmpeg -hide_banner -loglevel error "${src[@]}" "${video[@]}" "${audio[@]}" \
  -f hls -hls_time 2 -hls_playlist_type vod -hls_segment_filename "$out/hls/ts/seg_%03d.ts" "$out/hls/ts/index.m3u8"
ffmpeg -hide_banner -loglevel error "${src[@]}" "${video[@]}" "${audio[@]}" \
  -f hls -hls_time 2 -hls_playlist_type vod -hls_segment_type fmp4 -hls_fmp4_init_filename init.mp4 \
  -hls_segment_filename "$out/hls/fmp4/seg_%03d.m4s" "$out/hls/fmp4/index.m3u8"
cat > "$out/hls/master.m3u8" <<'M3U8'
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=90000,CODECS="avc1.42c00a,mp4a.40.2",RESOLUTION=160x90
ts/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=95000,CODECS="avc1.42c00a,mp4a.40.2",RESOLUTION=160x90
fmp4/index.m3u8
M3U8
ffmpeg -hide_banner -loglevel error "${src[@]}" "${video[@]}" "${audio[@]}" \
  -f dash -seg_duration 2 -use_template 1 -use_timeline 0 \
  -init_seg_name 'init-$RepresentationID$.m4s' -media_seg_name 'chunk-$RepresentationID$-$Number%03d$.m4s' \
  "$out/dash/manifest.mpd"
# 30 s of continuous segments for a simulated live stream: the end-to-end tests serve them
# through a sliding playlist (workers/gate/test/support.mjs); vod.m3u8 lists them all.
ffmpeg -hide_banner -loglevel error -f lavfi -i "testsrc2=size=160x90:rate=15" -f lavfi -i "sine=frequency=660:sample_rate=22050" -t 30 \
  "${video[@]}" "${audio[@]}" -f hls -hls_time 2 -hls_playlist_type vod -hls_segment_filename "$out/hls/live/seg_%03d.ts" "$out/hls/live/vod.m3u8"
# A poster frame, served without a credential (PUBLIC_PATHS=posters in wrangler.toml).
ffmpeg -hide_banner -loglevel error -f lavfi -i "testsrc2=size=320x180:rate=15" -frames:v 1 -q:v 4 "$out/posters/demo.jpg"
du -sh "$out"
