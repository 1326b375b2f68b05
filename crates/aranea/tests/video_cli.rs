//! `aranea hash` and `aranea bank` on videos, end to end: the built binary, a temporary data
//! directory, and benign slideshows made from corpus photos with the ffmpeg CLI at test time
//! (the tests declare some photos and one video "known").

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

fn aranea(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aranea"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("run aranea")
}

fn ok(data: &Path, args: &[&str]) -> Vec<Value> {
    let output = aranea(data, args);
    assert!(
        output.status.success(),
        "aranea {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn ffmpeg(args: &[String]) {
    let output = Command::new("ffmpeg")
        .args(["-nostdin", "-y", "-loglevel", "error"])
        .args(args)
        .output()
        .expect("ffmpeg is installed (scripts/test installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Corpus photos, two seconds each, 320x240 at 10 fps, H.264 (or `codec` in another container).
fn slideshow(dir: &Path, name: &str, images: &[&str], codec: &[&str]) -> PathBuf {
    let mut args = Vec::new();
    let mut graph = String::new();
    for (index, image) in images.iter().enumerate() {
        args.extend(["-loop", "1", "-t", "2", "-i"].map(String::from));
        args.push(format!("{CORPUS}/{image}"));
        graph.push_str(&format!(
            "[{index}]scale=320:240,setsar=1,fps=10[v{index}];"
        ));
    }
    graph.extend((0..images.len()).map(|i| format!("[v{i}]")));
    graph.push_str(&format!("concat=n={}:v=1[out]", images.len()));
    args.extend(["-filter_complex", &graph, "-map", "[out]"].map(String::from));
    args.extend(codec.iter().map(|s| s.to_string()));
    let out = dir.join(name);
    args.push(out.display().to_string());
    ffmpeg(&args);
    out
}

const H264: [&str; 6] = [
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-pix_fmt",
    "yuv420p",
];

fn manifest_pdq(name: &str) -> String {
    let manifest = std::fs::read_to_string(format!("{CORPUS}/MANIFEST.tsv")).unwrap();
    let line = manifest
        .lines()
        .find(|l| l.starts_with(&format!("{name}\t")))
        .unwrap();
    line.split('\t').next_back().unwrap().to_string()
}

#[test]
fn hash_reports_vpdq_features_of_videos_and_none_for_photos() {
    let work = tempfile::tempdir().unwrap();
    let video = slideshow(
        work.path(),
        "show.mp4",
        &["img-0001.jpg", "img-0002.jpg"],
        &H264,
    );
    let photo = format!("{CORPUS}/img-0001.jpg");
    let records = ok(work.path(), &["hash", video.to_str().unwrap(), &photo]);
    let video_record = records.iter().find(|r| r["kind"] == "mp4").unwrap();
    assert_eq!(
        (
            video_record["width"].as_u64(),
            video_record["height"].as_u64()
        ),
        (Some(320), Some(240))
    );
    let features = video_record["vpdq"].as_array().unwrap();
    let frames: Vec<u64> = features
        .iter()
        .map(|f| f["frame"].as_u64().unwrap())
        .collect();
    let times: Vec<f64> = features
        .iter()
        .map(|f| f["timestamp"].as_f64().unwrap())
        .collect();
    assert_eq!(frames, [0, 10, 20, 30]);
    assert_eq!(times, [0.0, 1.0, 2.0, 3.0]);
    for feature in features {
        assert_eq!(feature["hash"].as_str().unwrap().len(), 64);
        assert!(feature["quality"].as_u64().unwrap() <= 100);
    }
    let every = ok(
        work.path(),
        &["hash", "--seconds-per-hash", "0", video.to_str().unwrap()],
    );
    assert_eq!(every[0]["vpdq"].as_array().unwrap().len(), 40);
    let photo_record = records.iter().find(|r| r["kind"] == "jpeg").unwrap();
    assert!(photo_record.get("vpdq").is_none());
    // A truncated video is a record with an error, not a crash.
    let bytes = std::fs::read(&video).unwrap();
    let broken = work.path().join("broken.mp4");
    std::fs::write(&broken, &bytes[..bytes.len() / 3]).unwrap();
    let output = aranea(work.path(), &["hash", broken.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let record: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        record["error"].as_str().unwrap().contains("truncated"),
        "{record}"
    );
}

#[test]
fn bank_match_finds_known_videos_and_known_images_inside_videos_with_timestamps() {
    let work = tempfile::tempdir().unwrap();
    let (w, data) = (work.path(), work.path().join("data"));
    let known = slideshow(
        w,
        "known.mp4",
        &["img-0031.jpg", "img-0040.jpg", "img-0033.jpg"],
        &H264,
    );
    let webm = ["-c:v", "libvpx", "-b:v", "500k"];
    let copy = slideshow(
        w,
        "copy.webm",
        &["img-0031.jpg", "img-0040.jpg", "img-0033.jpg"],
        &webm,
    );
    let spliced = slideshow(
        w,
        "spliced.mp4",
        &["img-0034.jpg", "img-0020.jpg", "img-0036.jpg"],
        &H264,
    );
    let unrelated = slideshow(w, "other.mp4", &["img-0041.jpg", "img-0038.jpg"], &H264);
    for bank in ["videos", "images"] {
        ok(
            &data,
            &[
                "bank",
                "create",
                bank,
                "--source",
                "local",
                "--classification",
                "csam",
            ],
        );
    }
    let added = ok(
        &data,
        &["bank", "add-video", "videos", known.to_str().unwrap()],
    );
    assert_eq!(added.len(), 2);
    assert_eq!(added[0]["signal_type"], "vpdq");
    assert_eq!(added[0]["frames"], 6);
    assert_eq!(added[1]["signal_type"], "video_md5");
    let list = w.join("images.csv");
    std::fs::write(
        &list,
        format!(
            "signal_type,signal_value\npdq,{}\n",
            manifest_pdq("img-0020.jpg")
        ),
    )
    .unwrap();
    ok(
        &data,
        &[
            "bank",
            "import",
            "images",
            list.to_str().unwrap(),
            "--format",
            "hma-csv",
        ],
    );

    let files = [&known, &copy, &spliced, &unrelated].map(|p| p.to_str().unwrap().to_string());
    let mut args = vec!["bank", "match", "all"];
    args.extend(files.iter().map(String::as_str));
    let results = ok(&data, &args);
    assert_eq!(results.len(), 4);
    // The known file itself: its exact MD5 and its vPDQ.
    let kinds = |result: &Value| -> Vec<String> {
        result["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                format!(
                    "{}:{}",
                    h["signal_type"].as_str().unwrap(),
                    h["match"].as_str().unwrap_or("exact")
                )
            })
            .collect()
    };
    assert_eq!(kinds(&results[0]), ["video_md5:exact", "vpdq:video"]);
    // A re-encode in another codec: the vPDQ only, fully matched.
    assert_eq!(kinds(&results[1]), ["vpdq:video"]);
    assert_eq!(results[1]["hits"][0]["query_matched_percent"], 100.0);
    // The spliced video shows the known image from 2 s.
    assert_eq!(kinds(&results[2]), ["pdq:frame"]);
    assert_eq!(results[2]["hits"][0]["timestamp"], 2.0);
    assert_eq!(results[2]["hits"][0]["frame"], 20);
    assert!(results[3]["hits"].as_array().unwrap().is_empty());

    // vPDQ entries leave as reference text files and come back as the same value.
    let exported = w.join("vpdq");
    ok(
        &data,
        &["bank", "export-vpdq", "videos", exported.to_str().unwrap()],
    );
    let file = std::fs::read_dir(&exported)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 6);
    ok(
        &data,
        &[
            "bank",
            "create",
            "copies",
            "--source",
            "x",
            "--classification",
            "y",
        ],
    );
    let again = ok(
        &data,
        &["bank", "add-video", "copies", file.to_str().unwrap()],
    );
    assert_eq!(again[0]["value"], added[0]["value"]);
}
