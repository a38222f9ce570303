//! Manifest token propagation on real-world playlist and MPD shapes.

use streamgate_core::manifests::{dash, hls, Propagation};

fn propagation() -> Propagation {
    Propagation { host: "gate.example.com".into(), param: "token".into(), credential: "TKN".into() }
}

/// Removing every credential the rewrite added gives back the input, byte for byte.
fn assert_only_credentials_added(input: &str, output: &str) {
    let stripped = output.replace("&amp;token=TKN", "").replace("?token=TKN", "").replace("&token=TKN", "");
    // A URI whose only query was ours may have had other params before: "?a=1&token" → "?a=1".
    assert_eq!(stripped, input);
}

const MASTER: &str = r#"#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
# a comment that mentions URI="not-a-tag.m3u8"

#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI="skd://key65",KEYFORMAT="com.apple.streamingkeydelivery"
#EXT-X-SESSION-DATA:DATA-ID="com.example.title",URI="title.json"
#EXT-X-CONTENT-STEERING:SERVER-URI="/steering?video=1",PATHWAY-ID="CDN-A"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="English, US",DEFAULT=YES,AUTOSELECT=YES,LANGUAGE="en",URI="audio/en/index.m3u8"
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="English",INSTREAM-ID="CC1"
#EXT-X-STREAM-INF:BANDWIDTH=2000000,CODECS="avc1.640028,mp4a.40.2",RESOLUTION=1280x720,AUDIO="aac",CLOSED-CAPTIONS="cc"
720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=500000,CODECS="avc1.42e01e,mp4a.40.2"
https://cdn.thirdparty.example/360p/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=150000,URI="720p/iframes.m3u8"
"#;

#[test]
fn hls_master_playlist() {
    let out = hls::rewrite(MASTER, &propagation());
    let expected = MASTER
        .replace(r#"URI="title.json""#, r#"URI="title.json?token=TKN""#)
        .replace(r#"SERVER-URI="/steering?video=1""#, r#"SERVER-URI="/steering?video=1&token=TKN""#)
        .replace(r#"URI="audio/en/index.m3u8""#, r#"URI="audio/en/index.m3u8?token=TKN""#)
        .replace("\n720p/index.m3u8\n", "\n720p/index.m3u8?token=TKN\n")
        .replace(r#"URI="720p/iframes.m3u8""#, r#"URI="720p/iframes.m3u8?token=TKN""#);
    assert_eq!(out, expected);
    // Never to third parties or key systems; comments untouched.
    assert!(out.contains("\nhttps://cdn.thirdparty.example/360p/index.m3u8\n"));
    assert!(out.contains(r#"URI="skd://key65""#));
    assert!(out.contains(r#"# a comment that mentions URI="not-a-tag.m3u8""#));
    assert_only_credentials_added(MASTER, &out);
}

const LL_HLS: &str = "#EXTM3U\r\n#EXT-X-TARGETDURATION:4\r\n#EXT-X-VERSION:9\r\n\
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0,CAN-SKIP-UNTIL=24.0\r\n\
#EXT-X-PART-INF:PART-TARGET=0.33334\r\n#EXT-X-MEDIA-SEQUENCE:266\r\n\
#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"720@0\"\r\n\
#EXT-X-KEY:METHOD=AES-128,URI=\"https://gate.example.com/keys/k1?kid=1&token=stale\",IV=0x1234\r\n\
#EXTINF:4.00008,\r\nfileSequence266.mp4\r\n\
#EXT-X-PART:DURATION=0.33334,URI=\"filePart267.0.mp4\",INDEPENDENT=YES\r\n\
#EXT-X-BYTERANGE:1000@0\r\nseg.mp4#frag\r\n\
#EXT-X-KEY:METHOD=AES-128,URI=\"data:text/plain;base64,AAAAAAAAAAAAAAAAAAAAAA==\"\r\n\
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"filePart267.1.mp4\"\r\n\
#EXT-X-RENDITION-REPORT:URI=\"../1M/waitForMSN.php?_HLS_msn=273\",LAST-MSN=273,LAST-PART=2\r\n";

#[test]
fn ll_hls_media_playlist_with_crlf() {
    let out = hls::rewrite(LL_HLS, &propagation());
    for expected in [
        "#EXT-X-MAP:URI=\"init.mp4?token=TKN\",BYTERANGE=\"720@0\"\r\n",
        "URI=\"https://gate.example.com/keys/k1?kid=1&token=TKN\",IV=0x1234\r\n",
        "\r\nfileSequence266.mp4?token=TKN\r\n",
        "URI=\"filePart267.0.mp4?token=TKN\",INDEPENDENT=YES\r\n",
        "\r\nseg.mp4?token=TKN#frag\r\n",
        "URI=\"data:text/plain;base64,AAAAAAAAAAAAAAAAAAAAAA==\"\r\n",
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"filePart267.1.mp4?token=TKN\"\r\n",
        "URI=\"../1M/waitForMSN.php?_HLS_msn=273&token=TKN\",LAST-MSN=273",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
    assert!(!out.contains("stale"), "an old credential is replaced, not duplicated");
    assert_eq!(out.lines().count(), LL_HLS.lines().count());
    assert_eq!(out.matches("\r\n").count(), LL_HLS.matches("\r\n").count());
}

const MPD: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<!-- <SegmentURL media="in-a-comment.m4s"/> -->
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" minimumUpdatePeriod="PT2S">
  <Location>https://gate.example.com/live/a/manifest.mpd?x=1&amp;y=2</Location>
  <PatchLocation ttl="60">patch.mpp</PatchLocation>
  <BaseURL>https://gate.example.com/live/a/</BaseURL>
  <Period id="p0">
    <AdaptationSet mimeType="video/mp4">
      <BaseURL>video/</BaseURL>
      <SegmentTemplate timescale="1000" media="chunk-$RepresentationID$-$Number%05d$.m4s" initialization='init-$RepresentationID$.m4s' startNumber="1"/>
      <Representation id="v0" bandwidth="48000"/>
    </AdaptationSet>
    <AdaptationSet mimeType="audio/mp4">
      <BaseURL>https://cdn.thirdparty.example/audio/</BaseURL>
      <SegmentTemplate media="a-$Number$.m4s" initialization="a-init.m4s"/>
    </AdaptationSet>
  </Period>
  <Period id="p1">
    <AdaptationSet>
      <Representation id="r1">
        <BaseURL>r1/</BaseURL>
        <SegmentList duration="2">
          <Initialization sourceURL="init.mp4" range="0-719"/>
          <RepresentationIndex sourceURL="index.sidx"/>
          <SegmentURL media="s1.m4s" mediaRange="720-2000"/>
          <SegmentURL media="https://cdn.thirdparty.example/s2.m4s"/>
        </SegmentList>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"#;

#[test]
fn dash_multi_period_with_base_urls() {
    let out = dash::rewrite(MPD, &propagation());
    for expected in [
        "<Location>https://gate.example.com/live/a/manifest.mpd?x=1&amp;y=2&amp;token=TKN</Location>",
        r#"<PatchLocation ttl="60">patch.mpp?token=TKN</PatchLocation>"#,
        r#"media="chunk-$RepresentationID$-$Number%05d$.m4s?token=TKN" initialization='init-$RepresentationID$.m4s?token=TKN'"#,
        r#"<Initialization sourceURL="init.mp4?token=TKN" range="0-719"/>"#,
        r#"<RepresentationIndex sourceURL="index.sidx?token=TKN"/>"#,
        r#"<SegmentURL media="s1.m4s?token=TKN" mediaRange="720-2000"/>"#,
    ] {
        assert!(out.contains(expected), "missing {expected}\nin\n{out}");
    }
    // Under the third-party BaseURL nothing gets the credential, nor absolute foreign URLs.
    assert!(out.contains(r#"<SegmentTemplate media="a-$Number$.m4s" initialization="a-init.m4s"/>"#), "{out}");
    assert!(out.contains("<BaseURL>https://cdn.thirdparty.example/audio/</BaseURL>"));
    assert!(out.contains(r#"<SegmentURL media="https://cdn.thirdparty.example/s2.m4s"/>"#));
    assert!(out.contains(r#"<!-- <SegmentURL media="in-a-comment.m4s"/> -->"#));
    assert_only_credentials_added(MPD, &out);
}

#[test]
fn a_live_mpd_without_location_gets_one_that_carries_the_credential() {
    let url = "https://gate.example.com/live/a/manifest.mpd?lang=en";
    let live = "<?xml version=\"1.0\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"dynamic\" minimumUpdatePeriod=\"PT2S\">\n\t<ProgramInformation>\n\t</ProgramInformation>\n\t<BaseURL>media/</BaseURL>\n\t<ServiceDescription id=\"0\"/>\n\t<Period id=\"0\">\n\t\t<AdaptationSet><SegmentTemplate media=\"$Number$.m4s\"/></AdaptationSet>\n\t</Period>\n</MPD>\n";
    let out = dash::rewrite_with_refresh(live, &propagation(), url);
    // After ProgramInformation and BaseURL, before the first element that must follow it,
    // indented like that element.
    let expected = "<BaseURL>media/?token=TKN</BaseURL>\n\t<Location>https://gate.example.com/live/a/manifest.mpd?lang=en&amp;token=TKN</Location>\n\t<ServiceDescription";
    assert!(out.contains(expected), "{out}");
    assert_eq!(out.matches("<Location>").count(), 1);
    let without =
        out.replace("<Location>https://gate.example.com/live/a/manifest.mpd?lang=en&amp;token=TKN</Location>\n\t", "");
    assert_only_credentials_added(live, &without);

    // A static MPD is not refreshed: unchanged but for the credentials.
    let vod = live.replace("type=\"dynamic\"", "type=\"static\"");
    assert_eq!(dash::rewrite_with_refresh(&vod, &propagation(), url), dash::rewrite(&vod, &propagation()));
    // A live MPD with its own Location keeps it (rewritten), and gets no second one.
    let own =
        live.replace("<ServiceDescription", "<Location>https://gate.example.com/x.mpd</Location><ServiceDescription");
    let out = dash::rewrite_with_refresh(&own, &propagation(), url);
    assert_eq!(out.matches("<Location>").count(), 1, "{out}");
    assert!(out.contains("<Location>https://gate.example.com/x.mpd?token=TKN</Location>"));
    // A manifest URL on another host is never given the credential, nor added.
    let foreign = dash::rewrite_with_refresh(live, &propagation(), "https://other.example/m.mpd");
    assert!(!foreign.contains("<Location>"), "{foreign}");
}

#[test]
fn dash_foreign_base_at_the_top_keeps_everything_below_clean() {
    let mpd = r#"<MPD><BaseURL>https://cdn.other.example/</BaseURL><Period><BaseURL>p/</BaseURL><AdaptationSet><SegmentTemplate media="$Number$.m4s"/></AdaptationSet></Period></MPD>"#;
    assert_eq!(dash::rewrite(mpd, &propagation()), mpd);
    // An absolute BaseURL on our host brings a period back in scope.
    let mixed = r#"<MPD><BaseURL>https://cdn.other.example/</BaseURL><Period><BaseURL>https://gate.example.com/p/</BaseURL><AdaptationSet><SegmentTemplate media="$Number$.m4s"/></AdaptationSet></Period></MPD>"#;
    assert!(dash::rewrite(mixed, &propagation()).contains(r#"media="$Number$.m4s?token=TKN""#));
}

#[test]
fn demo_stream_manifests_rewrite_cleanly() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../demo/origin");
    for (file, dash_format) in [
        ("hls/master.m3u8", false),
        ("hls/ts/index.m3u8", false),
        ("hls/fmp4/index.m3u8", false),
        ("dash/manifest.mpd", true),
    ] {
        let input = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        let out =
            if dash_format { dash::rewrite(&input, &propagation()) } else { hls::rewrite(&input, &propagation()) };
        assert!(out.contains("token=TKN"), "{file}");
        assert_only_credentials_added(&input, &out);
        if !dash_format {
            // Every URI line, and every tag with a URI attribute, now carries the credential.
            for line in out.lines().filter(|l| !l.trim().is_empty() && (!l.starts_with('#') || l.contains("URI=\""))) {
                assert!(line.contains("token=TKN"), "{file}: {line}");
            }
        }
    }
}

#[test]
fn garbage_never_panics() {
    for junk in [
        "",
        "<",
        "<<<",
        "<a b=\"",
        "<SegmentURL media='x",
        "#EXT-X-KEY:",
        "#EXT-X-KEY:URI=\"",
        "#EXT-X-KEY:URI=",
        "\r\r\n",
        "<!--",
        "<![CDATA[",
    ] {
        let _ = hls::rewrite(junk, &propagation());
        let _ = dash::rewrite(junk, &propagation());
    }
}

#[test]
fn vod_manifests_know_how_long_they_play_and_live_ones_do_not() {
    use streamgate_core::manifests::{presentation_seconds, ManifestKind};
    let vod = "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:6.006,\na.ts\n#EXTINF:6.006,title\nb.ts\n#EXTINF:2.5\nc.ts\n#EXT-X-ENDLIST\n";
    assert_eq!(presentation_seconds(ManifestKind::Hls, vod), Some(15));
    let live = vod.replace("#EXT-X-PLAYLIST-TYPE:VOD\n", "").replace("#EXT-X-ENDLIST\n", "");
    assert_eq!(presentation_seconds(ManifestKind::Hls, &live), None);
    assert_eq!(presentation_seconds(ManifestKind::Hls, "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n"), None);
    assert_eq!(
        presentation_seconds(ManifestKind::Hls, "#EXTM3U\n#EXTINF:NaN,\n#EXTINF:-5,\n#EXTINF:1e400,\n#EXT-X-ENDLIST"),
        Some(0)
    );

    let mpd =
        |attrs: &str| format!("<?xml version=\"1.0\"?><!-- <MPD type=\"dynamic\"> --><MPD {attrs}><Period/></MPD>");
    assert_eq!(
        presentation_seconds(ManifestKind::Dash, &mpd(r#"type="static" mediaPresentationDuration="PT1H2M3.5S""#)),
        Some(3_724)
    );
    assert_eq!(presentation_seconds(ManifestKind::Dash, &mpd(r#"mediaPresentationDuration='P1DT0.5S'"#)), Some(86_401));
    assert_eq!(
        presentation_seconds(ManifestKind::Dash, &mpd(r#"type="dynamic" mediaPresentationDuration="PT8S""#)),
        None
    );
    assert_eq!(presentation_seconds(ManifestKind::Dash, &mpd(r#"type="static""#)), None);
    for junk in ["P", "PT", "PT5", "PTxS", "P1Y", "PT1S2"] {
        let attrs = format!(r#"mediaPresentationDuration="{junk}""#);
        assert!(matches!(presentation_seconds(ManifestKind::Dash, &mpd(&attrs)), None | Some(0)), "{junk}");
    }
    let demo =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../demo/origin/dash/manifest.mpd")).unwrap();
    assert_eq!(presentation_seconds(ManifestKind::Dash, &demo), Some(8));
}
