//! Real photos through the real models, on both engines.

use snaplabel_core::ErrorCode;
use snaplabel_core::detect::{DetectOptions, Feature, Label};
use snaplabel_vision::labeler::LabelError;
use snaplabel_vision::{EngineKind, LoadOptions, LocalLabeler};

/// Where the README's test command put the models (`SNAPLABEL_MODEL_DIR`), or the default.
fn model_dir() -> std::path::PathBuf {
    snaplabel_core::config::ModelSettings::from_lookup(|k| std::env::var(k).ok()).dir
}
use std::sync::OnceLock;

use snaplabel_fixtures::photo as fixture;

fn labeler(engine: EngineKind) -> &'static LocalLabeler {
    static ORT: OnceLock<LocalLabeler> = OnceLock::new();
    static TRACT: OnceLock<LocalLabeler> = OnceLock::new();
    let cell = if engine == EngineKind::Ort {
        &ORT
    } else {
        &TRACT
    };
    cell.get_or_init(|| {
        LocalLabeler::load(&LoadOptions::new(model_dir(), engine))
            .unwrap_or_else(|e| panic!("{e} — the README's test command installs the models"))
    })
}

fn labels(engine: EngineKind, photo: &str) -> Vec<Label> {
    let options = DetectOptions::default();
    labeler(engine)
        .label(&fixture(photo), &options)
        .unwrap()
        .response
        .labels
}

fn find<'a>(labels: &'a [Label], name: &str) -> Option<&'a Label> {
    labels.iter().find(|l| l.name == name)
}

fn names(labels: &[Label]) -> Vec<String> {
    labels
        .iter()
        .map(|l| format!("{} {:.0}", l.name, l.confidence))
        .collect()
}

#[test]
fn a_tabby_is_a_cat_with_a_box() {
    let labels = labels(EngineKind::Ort, "chelsea.png");
    let cat = find(&labels, "Cat").unwrap_or_else(|| panic!("{:?}", names(&labels)));
    assert!(cat.confidence > 80.0, "{:?}", names(&labels));
    assert!(cat.parents.iter().any(|p| p.name == "Animal"));
    assert!(cat.categories.iter().any(|c| c.name == "Animals and Pets"));
    assert!(!cat.instances.is_empty(), "Cat has a box");
    let b = cat.instances[0].bounding_box;
    assert!(
        b.width > 0.2 && b.height > 0.3 && b.left >= 0.0 && b.left + b.width <= 1.0 + 1e-4,
        "{b:?}"
    );
    assert!(
        find(&labels, "Animal").is_some_and(|a| a.instances.is_empty()),
        "abstract labels have no box"
    );
    assert!(find(&labels, "Person").is_none(), "{:?}", names(&labels));
}

#[test]
fn an_espresso_is_coffee_in_a_cup() {
    let labels = labels(EngineKind::Ort, "coffee.png");
    for expected in ["Cup", "Coffee", "Espresso", "Beverage"] {
        assert!(
            find(&labels, expected).is_some(),
            "{expected} in {:?}",
            names(&labels)
        );
    }
}

#[test]
fn portraits_get_person_and_face_with_boxes() {
    for photo in ["astronaut.png", "grace_hopper.jpg"] {
        let labels = labels(EngineKind::Ort, photo);
        for expected in ["Person", "Human", "Face"] {
            assert!(
                find(&labels, expected).is_some(),
                "{photo}: {expected} in {:?}",
                names(&labels)
            );
        }
        let face = find(&labels, "Face").unwrap();
        assert_eq!(face.instances.len(), 1, "{photo}: one face");
        let b = face.instances[0].bounding_box;
        assert!(
            b.width > 0.1 && b.width < 0.6 && b.top < 0.5,
            "{photo}: {b:?}"
        );
        let person = find(&labels, "Person").unwrap();
        assert!(!person.instances.is_empty());
        let p = person.instances[0].bounding_box;
        assert!(
            p.left <= b.left && p.top <= b.top && p.width >= b.width,
            "{photo}: person box contains the face"
        );
    }
}

#[test]
fn people_without_a_frontal_face_are_still_people() {
    let labels = labels(EngineKind::Ort, "basketball.png");
    let person = find(&labels, "Person").unwrap_or_else(|| panic!("{:?}", names(&labels)));
    assert!(find(&labels, "Human").is_some(), "{:?}", names(&labels));
    // The man on the left, facing the camera's side, is found as a whole body.
    let left = person
        .instances
        .iter()
        .map(|i| i.bounding_box)
        .find(|b| b.left + b.width / 2.0 < 0.35)
        .unwrap_or_else(|| panic!("{:?}", person.instances));
    assert!(left.height > 0.5 && left.width < 0.6, "{left:?}");
    // His face, 5% of the frame (too small for BlazeFace on the whole image), is found in the
    // view around his head (estimated from the object detector's person box), and lies in his
    // body box.
    let face = find(&labels, "Face").unwrap_or_else(|| panic!("{:?}", names(&labels)));
    let [f] = face.instances.as_slice() else {
        panic!("{:?}", face.instances);
    };
    let b = f.bounding_box;
    assert!(b.width < 0.1 && b.height < 0.12, "{b:?}");
    let (cx, cy) = (b.left + b.width / 2.0, b.top + b.height / 2.0);
    assert!(
        (left.left..left.left + left.width).contains(&cx)
            && (left.top..left.top + left.height / 3.0).contains(&cy),
        "face {b:?} not at the top of body {left:?}"
    );
}

#[test]
fn things_without_people_get_no_person() {
    for photo in [
        "chelsea.png",
        "coffee.png",
        "rocket.jpg",
        "motorcycle_left.png",
    ] {
        let labels = labels(EngineKind::Ort, photo);
        for word in ["Person", "Human", "Face"] {
            assert!(
                find(&labels, word).is_none(),
                "{photo}: {:?}",
                names(&labels)
            );
        }
    }
}

#[test]
fn a_page_of_print_is_text_with_a_box_per_line() {
    for engine in [EngineKind::Ort, EngineKind::Tract] {
        let labels = labels(engine, "page.png");
        let text = find(&labels, "Text").unwrap_or_else(|| panic!("{:?}", names(&labels)));
        assert!(text.confidence > 80.0, "{engine}: {:?}", names(&labels));
        // The page has about ten lines of print, each much wider than tall.
        let lines: Vec<_> = text.instances.iter().map(|i| i.bounding_box).collect();
        assert!((5..=40).contains(&lines.len()), "{engine}: {lines:?}");
        let wide = lines
            .iter()
            .filter(|b| b.width * 384.0 > 3.0 * b.height * 191.0);
        assert!(wide.count() * 2 > lines.len(), "{engine}: {lines:?}");
    }
    // The classifier does not suspect text in a photo of a cat, so the detector does not run.
    let labeled = labeler(EngineKind::Ort)
        .label(&fixture("chelsea.png"), &DetectOptions::default())
        .unwrap();
    assert!(find(&labeled.response.labels, "Text").is_none());
    assert!(
        !labeled
            .jobs_ms
            .iter()
            .any(|(name, _)| name.starts_with("text"))
    );
}

#[test]
fn a_motorcycle_is_a_motorcycle_with_a_box() {
    let labels = labels(EngineKind::Ort, "motorcycle_left.png");
    let m = find(&labels, "Motorcycle").unwrap_or_else(|| panic!("{:?}", names(&labels)));
    assert!(!m.instances.is_empty());
    assert!(find(&labels, "Vehicle").is_some());
}

/// The classes of the objects found clearly (well above the threshold, where rounding differences
/// between engines cannot tip a score over it), sorted.
fn clear_objects(inferred: &snaplabel_vision::labeler::Inferred) -> Vec<usize> {
    let mut classes: Vec<usize> = inferred
        .objects
        .iter()
        .filter(|o| o.score >= 0.4)
        .map(|o| o.class)
        .collect();
    classes.sort();
    classes
}

/// Boxes of a label's instances as `(left, top, right, bottom)` fractions.
fn boxes(label: &Label) -> Vec<(f32, f32, f32, f32)> {
    label
        .instances
        .iter()
        .map(|i| {
            let b = i.bounding_box;
            (b.left, b.top, b.left + b.width, b.top + b.height)
        })
        .collect()
}

#[test]
fn an_everyday_object_gets_the_detectors_tight_box_under_one_label() {
    let labels = labels(EngineKind::Ort, "coffee.png");
    // The classifier and the detector both see the cup: one `Cup`, one box, the detector's,
    // around the cup and not the saucer (the cup spans x 165–415 and y 15–275 of 600×400).
    let cups: Vec<&Label> = labels.iter().filter(|l| l.name == "Cup").collect();
    assert_eq!(cups.len(), 1, "{:?}", names(&labels));
    let [(left, top, right, bottom)] = boxes(cups[0])[..] else {
        panic!("{:?}", cups[0].instances);
    };
    assert!(
        (0.22..0.33).contains(&left)
            && top < 0.12
            && (0.63..0.75).contains(&right)
            && (0.6..0.8).contains(&bottom),
        "{:?}",
        boxes(cups[0])
    );
    // The classifier's more specific name for the detected cup gets the same box.
    let coffee_cup = find(&labels, "Coffee Cup").unwrap_or_else(|| panic!("{:?}", names(&labels)));
    assert_eq!(boxes(coffee_cup), boxes(cups[0]));
}

#[test]
fn several_objects_get_one_box_each() {
    // Nine birds in the sky over a palace: a box for each of at least seven, small, above the
    // roofline, and no two the same.
    let home = labels(EngineKind::Ort, "home.jpg");
    let bird = find(&home, "Bird").unwrap_or_else(|| panic!("{:?}", names(&home)));
    let birds = boxes(bird);
    assert!((7..=9).contains(&birds.len()), "{birds:?}");
    for &(left, top, right, bottom) in &birds {
        assert!(
            right - left < 0.1 && bottom - top < 0.1 && bottom < 0.65,
            "{birds:?}"
        );
    }
    for (i, a) in birds.iter().enumerate() {
        for b in &birds[i + 1..] {
            let overlap =
                (a.2.min(b.2) - a.0.max(b.0)).max(0.0) * (a.3.min(b.3) - a.1.max(b.1)).max(0.0);
            assert!(overlap == 0.0, "{a:?} and {b:?} overlap");
        }
    }
    assert!(find(&home, "Animal").is_some_and(|a| a.instances.is_empty()));
    // A footballer, a ball at his feet and people in the stands: the player is the largest
    // person box, and the ball's box is small, at the bottom, under the `Ball` the detector and
    // the classifier ("Soccer Ball") share.
    let labels = labels(EngineKind::Ort, "football.jpg");
    let person = find(&labels, "Person").unwrap_or_else(|| panic!("{:?}", names(&labels)));
    let people = boxes(person);
    assert!(people.len() >= 3, "{people:?}");
    let area = |b: &(f32, f32, f32, f32)| (b.2 - b.0) * (b.3 - b.1);
    let player = people
        .iter()
        .copied()
        .max_by(|a, b| area(a).total_cmp(&area(b)))
        .unwrap();
    assert!(area(&player) > 0.3, "{people:?}");
    let ball = find(&labels, "Ball").unwrap_or_else(|| panic!("{:?}", names(&labels)));
    let [(left, top, right, bottom)] = boxes(ball)[..] else {
        panic!("{:?}", ball.instances);
    };
    assert!(
        right - left < 0.15 && top > 0.75 && bottom > 0.9,
        "{:?}",
        boxes(ball)
    );
    assert!(
        (0.55..0.75).contains(&((left + right) / 2.0)),
        "{:?}",
        boxes(ball)
    );
}

#[test]
fn a_photo_stored_sideways_gets_its_boxes_upright() {
    // Phones store a portrait photo turned, with EXIF orientation 6. The labels describe the
    // photo as shown: the same birds in the same places as in the upright original (the JPEG
    // re-encoding moves scores a little, not boxes).
    let options = DetectOptions::default();
    let sideways = snaplabel_fixtures::stored_sideways(&fixture("home.jpg"));
    let labeled = labeler(EngineKind::Ort).label(&sideways, &options).unwrap();
    assert_eq!(
        (
            labeled.probe.width,
            labeled.probe.height,
            labeled.probe.exif_orientation
        ),
        (512, 384, 6)
    );
    let turned = labeled.response.labels;
    let upright = labels(EngineKind::Ort, "home.jpg");
    let birds = |labels: &[Label]| {
        let mut b = find(labels, "Bird").map(boxes).unwrap_or_default();
        b.sort_by(|x, y| x.0.total_cmp(&y.0));
        b
    };
    let (turned_birds, upright_birds) = (birds(&turned), birds(&upright));
    assert!(turned_birds.len() >= 7, "{:?}", names(&turned));
    // Every bird found in the turned copy is one found upright, within 2% of the frame.
    for t in &turned_birds {
        assert!(
            upright_birds.iter().any(|u| (t.0 - u.0).abs() < 0.02
                && (t.1 - u.1).abs() < 0.02
                && (t.2 - u.2).abs() < 0.02
                && (t.3 - u.3).abs() < 0.02),
            "{t:?} not among {upright_birds:?}"
        );
    }
}

#[test]
fn both_engines_agree_on_the_top_five() {
    for photo in [
        "chelsea.png",
        "coffee.png",
        "rocket.jpg",
        "motorcycle_left.png",
        "grace_hopper.jpg",
        "basketball.png",
        "home.jpg",
    ] {
        let bytes = fixture(photo);
        let top5 = |engine| {
            let l = labeler(engine);
            let mut prepared = LocalLabeler::prepare(&bytes, &l.limits()).unwrap();
            let inferred = l.infer(&mut prepared, &DetectOptions::default()).unwrap();
            let mut ranked: Vec<(usize, f32)> =
                inferred.probabilities.iter().copied().enumerate().collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            ranked.truncate(5);
            (ranked, inferred.faces.len(), clear_objects(&inferred))
        };
        let (ort, ort_faces, ort_objects) = top5(EngineKind::Ort);
        let (tract, tract_faces, tract_objects) = top5(EngineKind::Tract);
        assert_eq!(
            ort.iter().map(|c| c.0).collect::<Vec<_>>(),
            tract.iter().map(|c| c.0).collect::<Vec<_>>(),
            "{photo}"
        );
        for (a, b) in ort.iter().zip(&tract) {
            assert!((a.1 - b.1).abs() < 1e-3, "{photo}: {a:?} vs {b:?}");
        }
        assert_eq!(ort_faces, tract_faces, "{photo}");
        assert_eq!(ort_objects, tract_objects, "{photo}");
    }
}

#[test]
fn options_shape_the_response_like_rekognition() {
    let l = labeler(EngineKind::Ort);
    let bytes = fixture("chelsea.png");
    let only_properties = DetectOptions {
        features: vec![Feature::ImageProperties],
        ..Default::default()
    };
    let r = l.label(&bytes, &only_properties).unwrap().response;
    assert!(r.labels.is_empty());
    let p = r.image_properties.unwrap();
    assert!(!p.dominant_colors.is_empty() && p.dominant_colors.len() <= 10);
    let q = p.quality.unwrap();
    assert!(
        q.brightness > 10.0 && q.brightness < 90.0 && q.sharpness > 0.0 && q.contrast > 0.0,
        "{q:?}"
    );

    let two = DetectOptions {
        max_labels: Some(2),
        min_confidence: Some(0.0),
        ..Default::default()
    };
    assert_eq!(l.label(&bytes, &two).unwrap().response.labels.len(), 2);
    let high = DetectOptions {
        min_confidence: Some(99.9),
        ..Default::default()
    };
    assert!(
        l.label(&bytes, &high)
            .unwrap()
            .response
            .labels
            .iter()
            .all(|l| l.confidence >= 99.9)
    );
}

#[test]
fn bad_inputs_get_their_codes_not_labels() {
    let l = labeler(EngineKind::Ort);
    let png = fixture("chelsea.png");
    for (bytes, code) in [
        (Vec::new(), ErrorCode::EmptyObject),
        (
            b"hello, I am a text file called photo.jpg".to_vec(),
            ErrorCode::UnsupportedFormat,
        ),
        (png[..png.len() / 2].to_vec(), ErrorCode::CorruptImage),
        (
            vec![0xFF, 0xD8, 0xFF, 0xDB, 0, 3, 9],
            ErrorCode::CorruptImage,
        ),
    ] {
        match l.label(&bytes, &DetectOptions::default()) {
            Err(LabelError::Image(e)) => assert_eq!(e.code, code, "{e}"),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("{code} expected"),
        }
    }
}

/// Strips, panoramas and the smallest accepted size go through every network (each detector
/// letterboxes them into its own input shape) on both engines, and the engines agree on them.
#[test]
fn odd_shapes_are_labeled_on_both_engines() {
    let cat = image::load_from_memory(&fixture("chelsea.png"))
        .unwrap()
        .into_rgb8();
    for (w, h) in [(4000, 40), (40, 3000), (32, 32), (33, 700), (300, 301)] {
        let img = image::imageops::resize(&cat, w, h, image::imageops::FilterType::Triangle);
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let mut outcomes = Vec::new();
        for engine in [EngineKind::Ort, EngineKind::Tract] {
            let l = labeler(engine);
            let mut prepared =
                LocalLabeler::prepare(&png, &l.limits()).unwrap_or_else(|e| panic!("{w}×{h}: {e}"));
            let inferred = l
                .infer(&mut prepared, &DetectOptions::default())
                .unwrap_or_else(|e| panic!("{w}×{h} on {engine}: {e}"));
            let top = inferred
                .probabilities
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(class, _)| class);
            outcomes.push((top, inferred.faces.len(), clear_objects(&inferred)));
        }
        assert_eq!(outcomes[0], outcomes[1], "{w}×{h}: ort vs tract");
    }
}

#[test]
fn images_with_nothing_in_them_get_no_labels() {
    // Noise and a flat colour: the classifier has no idea, and its long tail over ImageNet's ~400
    // animal classes once added up to "Animal 56–65"; a flat green once read as Vegetation.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let noise = image::RgbImage::from_fn(640, 480, |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        image::Rgb([state as u8, (state >> 8) as u8, (state >> 16) as u8])
    });
    let green = image::RgbImage::from_pixel(640, 480, image::Rgb([40, 140, 40]));
    for (name, img) in [("noise", noise), ("flat green", green)] {
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        for engine in [EngineKind::Ort, EngineKind::Tract] {
            let labels = labeler(engine)
                .label(png.get_ref(), &DetectOptions::default())
                .unwrap()
                .response
                .labels;
            assert!(
                labels.is_empty(),
                "{name} on {engine}: {:?}",
                names(&labels)
            );
        }
    }
}
