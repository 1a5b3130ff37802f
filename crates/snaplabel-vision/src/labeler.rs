//! The local labeler: decode → preprocess → infer → describe, each stage separately callable so
//! that callers can overlap decoding of one image with inference of another.

use crate::cam::{ClassifierHead, FeatureMap, Frame};
use crate::detector::{Detection, Rect, View};
use crate::engine::{self, Concurrency, EngineKind, Network, Tensor};
use crate::faces::{self, Face};
use crate::objects::{self, Object};
use crate::properties::image_properties;
use crate::resize::{Region, resize_region};
use crate::scene;
use crate::taxonomy::Taxonomy;
use crate::text::{self, TextLine};
use crate::{
    CLASSIFIER_FILE, FACE_DETECTOR_FILE, OBJECT_DETECTOR_FILE, TEXT_DETECTOR_FILE, VisionError,
    ort_library_in,
};
use image::RgbImage;
use snaplabel_core::detect::{
    BoundingBox, DetectLabelsResponse, DetectOptions, ImageProperties, Instance, Label, NamedItem,
};
use snaplabel_core::{ErrorBody, ErrorCode};
use snaplabel_imageio::{ImageError, Limits, Probe};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

/// EfficientNet-Lite0's input, and the short side it is centre-cropped from (the usual 0.875).
pub const CLASSIFIER_INPUT: u32 = 224;
pub const CLASSIFIER_RESIZE: u32 = 256;
/// The classifier sees two views of each photo, one inference each: the centre crop (sharp, the
/// usual evaluation view) and the whole frame squeezed to a square (context: sky, shore, street).
pub const VIEWS: usize = 2;
const VIEW_NAMES: [&str; VIEWS] = ["classifier, centre crop", "classifier, whole frame"];
pub const MODEL_VERSION: &str = "snaplabel-local-4 (efficientnet-lite0 imagenet-1k, centernet-mobilenetv3 coco-80, blazeface-front-128, ppocr-v4-det, wordnet taxonomy v2)";
/// Labels below this confidence are not even considered (before the caller's MinConfidence).
const CONSIDER_FLOOR: f32 = 0.5;
/// The text detector runs when the classifier's `Text` (a page, a sign, a menu, a book cover…)
/// reaches this confidence in either view: on the quality set and the package photos, pages,
/// signs and graffiti score 35–95, portraits and objects at most 23.
const TEXT_SUSPECTED: f32 = 30.0;
/// Text lines reported per image, the likeliest first.
const MAX_TEXT_LINES: usize = 50;

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub model_dir: PathBuf,
    /// The ONNX Runtime library, when not in the model folder.
    pub ort_library: Option<PathBuf>,
    pub engine: EngineKind,
    /// Threads one image's inference may use (its jobs — classifier views, object detector, face
    /// detector, colour work — are spread over them).
    pub threads: usize,
    pub limits: Limits,
    pub face_threshold: f32,
    pub text_threshold: f32,
    pub object_threshold: f32,
}

impl LoadOptions {
    pub fn new(model_dir: PathBuf, engine: EngineKind) -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        LoadOptions {
            model_dir,
            ort_library: None,
            engine,
            threads,
            limits: Limits::default(),
            face_threshold: faces::DEFAULT_THRESHOLD,
            text_threshold: text::DEFAULT_THRESHOLD,
            object_threshold: objects::DEFAULT_THRESHOLD,
        }
    }
}

/// Milliseconds spent per stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimings {
    pub decode: f64,
    pub preprocess: f64,
    pub inference: f64,
    pub postprocess: f64,
}

impl StageTimings {
    pub fn total(&self) -> f64 {
        self.decode + self.preprocess + self.inference + self.postprocess
    }
}

/// A decoded image with its model inputs, ready for inference.
pub struct Prepared {
    pub probe: Probe,
    pub image: RgbImage,
    /// The image's bytes stay reserved from the decode pool until it is dropped.
    _memory: snaplabel_imageio::Reservation,
    /// One tensor per view.
    classifier_input: Vec<Tensor>,
    frame: Frame,
    pub timings: StageTimings,
}

/// What the networks said about one image.
pub struct Inferred {
    /// Class probabilities, the mean of the views (for agreement checks and boxes).
    pub probabilities: Vec<f32>,
    /// Class probabilities per view: centre crop, whole image.
    pub views: Vec<Vec<f32>>,
    /// The whole-image view's last feature map, for boxes.
    features: FeatureMap,
    pub faces: Vec<Face>,
    /// COCO objects, best first.
    pub objects: Vec<Object>,
    /// Lines of text, when the classifier suspected text (else empty).
    pub text: Vec<TextLine>,
    pub scene: scene::SceneCues,
    /// When the request wants them, with every dominant colour (its limit is applied when
    /// describing).
    pub properties: Option<ImageProperties>,
    /// What each inference job took, in milliseconds on its lane, in job order.
    pub jobs_ms: Vec<(&'static str, f64)>,
}

/// A labeled image.
pub struct Labeled {
    pub probe: Probe,
    pub response: DetectLabelsResponse,
    pub timings: StageTimings,
    /// The inference stage by job: see [`Inferred::jobs_ms`].
    pub jobs_ms: Vec<(&'static str, f64)>,
}

/// Why an image got no labels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Vision(#[from] VisionError),
}

impl From<LabelError> for ErrorBody {
    fn from(e: LabelError) -> Self {
        match e {
            LabelError::Image(e) => e.into(),
            LabelError::Vision(e) => ErrorBody::new(ErrorCode::LabelerFailed, e.to_string()),
        }
    }
}

pub struct LocalLabeler {
    classifier: Box<dyn Network>,
    /// The classifier's linear layer, applied to the feature map for boxes.
    classifier_head: ClassifierHead,
    face_detector: Box<dyn Network>,
    text_detector: Box<dyn Network>,
    object_detector: Box<dyn Network>,
    /// How many inference jobs of one image run at once.
    lanes: usize,
    taxonomy: Taxonomy,
    engine: EngineKind,
    limits: Limits,
    face_threshold: f32,
    text_threshold: f32,
    object_threshold: f32,
}

fn ms(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

impl LocalLabeler {
    /// Loads the networks once; the labeler is then shared by every request.
    pub fn load(options: &LoadOptions) -> Result<LocalLabeler, VisionError> {
        let dir = &options.model_dir;
        for file in [
            CLASSIFIER_FILE,
            FACE_DETECTOR_FILE,
            TEXT_DETECTOR_FILE,
            OBJECT_DETECTOR_FILE,
        ] {
            if !dir.join(file).exists() {
                return Err(VisionError::Model(format!(
                    "{} is missing (run `cargo xtask setup`, or point SNAPLABEL_MODEL_DIR at the models)",
                    dir.join(file).display()
                )));
            }
        }
        let library = ort_library_in(dir, options.ort_library.as_deref());
        // Two lanes on a small machine: the object detector runs on one, each on one thread,
        // while the other takes the classifier's two views, the faces and the colour work.
        // Threads that share one inference wait for each other at every layer, and lose most
        // when the faces and colours run beside them; separate lanes never wait.
        let threads = options.threads.max(1);
        let lanes = threads.min(VIEWS);
        let size = CLASSIFIER_INPUT as usize;
        let classifier = engine::load(
            options.engine,
            &dir.join(CLASSIFIER_FILE),
            &[&[1, 3, size, size]],
            &library,
            Concurrency {
                lanes,
                threads: threads / lanes,
            },
        )?;
        let face_side = faces::INPUT_SIZE as usize;
        let face_detector = engine::load(
            options.engine,
            &dir.join(FACE_DETECTOR_FILE),
            &[&[1, face_side, face_side, 3]],
            &library,
            // Too small to gain from more threads per run.
            Concurrency { lanes, threads: 1 },
        )?;
        let text_detector = engine::load(
            options.engine,
            &dir.join(TEXT_DETECTOR_FILE),
            &text::INPUT_SHAPES.each_ref().map(|s| s.as_slice()),
            &library,
            // It runs alone, after the other jobs, and only for suspected text: every core.
            Concurrency { lanes: 1, threads },
        )?;
        let object_detector = engine::load(
            options.engine,
            &dir.join(OBJECT_DETECTOR_FILE),
            &objects::INPUT_SHAPES.each_ref().map(|s| s.as_slice()),
            &library,
            // One run per image on a lane of its own, beside the classifier's views.
            Concurrency { lanes, threads: 1 },
        )?;
        let classifier_head = ClassifierHead::read(&dir.join(CLASSIFIER_FILE))?;
        if classifier_head.classes != 1000 {
            return Err(VisionError::Model(format!(
                "{}: the linear layer has {} classes, expected ImageNet's 1000",
                dir.join(CLASSIFIER_FILE).display(),
                classifier_head.classes
            )));
        }
        Ok(LocalLabeler {
            classifier,
            classifier_head,
            face_detector,
            text_detector,
            object_detector,
            lanes,
            taxonomy: Taxonomy::embedded(),
            engine: options.engine,
            limits: options.limits,
            face_threshold: options.face_threshold,
            text_threshold: options.text_threshold,
            object_threshold: options.object_threshold,
        })
    }

    pub fn engine(&self) -> EngineKind {
        self.engine
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn taxonomy(&self) -> &Taxonomy {
        &self.taxonomy
    }

    /// Decodes (downscaled in the DCT domain where possible) and builds the model inputs.
    /// Needs no model: callers may run it on other threads while inference is busy.
    pub fn prepare(bytes: &[u8], limits: &Limits) -> Result<Prepared, ImageError> {
        let started = Instant::now();
        let decoded = snaplabel_imageio::decode_at_least(bytes, limits, CLASSIFIER_RESIZE)?;
        let decode = ms(started);
        let started = Instant::now();
        let (classifier_input, frame) = classifier_input(&decoded.image);
        let timings = StageTimings {
            decode,
            preprocess: ms(started),
            ..Default::default()
        };
        Ok(Prepared {
            probe: decoded.probe,
            image: decoded.image,
            _memory: decoded.memory,
            classifier_input,
            frame,
            timings,
        })
    }

    /// Runs the networks: the object detector (then the face detector around the small heads of
    /// its people), the classifier's views, the face detector on the whole image, the colour cues and (if
    /// `options` want them) the image properties, as separate jobs spread over the lanes; then,
    /// if the classifier suspects text, the text detector.
    pub fn infer(
        &self,
        prepared: &mut Prepared,
        options: &DetectOptions,
    ) -> Result<Inferred, VisionError> {
        let started = Instant::now();
        let image = &prepared.image;
        // Longest first, so that the short jobs fill the gaps at the end. Each is named for the
        // timings.
        let mut jobs: Vec<(&'static str, Job<'_>)> = Vec::new();
        jobs.push((
            "object detector, then faces around small heads",
            Box::new(move || Output::Objects(self.objects_and_small_faces(image))),
        ));
        for (input, name) in prepared.classifier_input.iter().zip(VIEW_NAMES) {
            jobs.push((
                name,
                Box::new(move || Output::View(self.classifier.run(input.clone()))),
            ));
        }
        if options.wants_image_properties() {
            jobs.push((
                "image properties",
                Box::new(|| Output::Properties(image_properties(image, usize::MAX))),
            ));
        }
        jobs.push((
            "faces, whole image",
            Box::new(move || {
                Output::Faces(faces::detect_in(
                    self.face_detector.as_ref(),
                    image,
                    &View::whole(image),
                    self.face_threshold,
                ))
            }),
        ));
        jobs.push((
            "colour cues",
            Box::new(|| Output::Scene(scene::cues(image))),
        ));
        let (names, jobs): (Vec<&'static str>, Vec<Job<'_>>) = jobs.into_iter().unzip();

        let (mut logits, mut features) = (Vec::new(), Vec::new());
        let (mut candidates, mut scene, mut properties) = (Vec::new(), None, None);
        let mut found_objects = Vec::new();
        let ran = run_jobs(self.lanes, jobs);
        let mut jobs_ms: Vec<_> = names.iter().zip(&ran).map(|(&n, r)| (n, r.ms)).collect();
        for output in ran.into_iter().map(|r| r.output) {
            match output {
                None => return Err(VisionError::Inference("an inference job panicked".into())),
                Some(Output::View(outputs)) => match <[Tensor; 2]>::try_from(outputs?) {
                    Ok([l, f])
                        if l.data.len() == 1000
                            && f.shape.len() == 4
                            && f.shape[..2] == [1, self.classifier_head.channels]
                            && f.shape[2] == f.shape[3] =>
                    {
                        logits.push(l.data);
                        features.push(f);
                    }
                    _ => {
                        return Err(VisionError::Inference(format!(
                            "the classifier's outputs are not [1,1000] logits and [1,{},n,n] features",
                            self.classifier_head.channels
                        )));
                    }
                },
                Some(Output::Faces(found)) => candidates.extend(found?),
                Some(Output::Objects(found)) => {
                    let (found, small_faces) = found?;
                    found_objects = found;
                    candidates.extend(small_faces);
                }
                Some(Output::Scene(cues)) => scene = Some(cues),
                Some(Output::Properties(p)) => properties = Some(p),
            }
        }
        let faces = faces::merge(candidates);
        let views: Vec<Vec<f32>> = logits.iter().map(|l| softmax(l)).collect();
        let mut text = Vec::new();
        if self.suspects_text(&views) {
            let started = Instant::now();
            text = text::detect(self.text_detector.as_ref(), image, self.text_threshold)?;
            text.truncate(MAX_TEXT_LINES);
            jobs_ms.push(("text detector (suspected text only)", ms(started)));
        }
        let probabilities = views[0]
            .iter()
            .zip(&views[1])
            .map(|(a, b)| (a + b) / 2.0)
            .collect();
        // Boxes come from the whole-image view, which sees every part of the photo.
        let whole = features.pop().expect("one feature map per view");
        let features = FeatureMap {
            channels: whole.shape[1],
            size: whole.shape[2],
            data: whole.data,
        };
        prepared.timings.inference = ms(started);
        Ok(Inferred {
            probabilities,
            views,
            features,
            faces,
            objects: found_objects,
            text,
            scene: scene.unwrap_or_default(),
            properties,
            jobs_ms,
        })
    }

    /// Whether either classifier view gives `Text` at least [`TEXT_SUSPECTED`].
    fn suspects_text(&self, views: &[Vec<f32>]) -> bool {
        let Some(label) = self.taxonomy.label_index("Text") else {
            return false;
        };
        views
            .iter()
            .any(|v| confidence_of(self.taxonomy.probability_of(label, v)) >= TEXT_SUSPECTED)
    }

    /// The objects in the image, then BlazeFace around each small head of the people among them
    /// (one job: those views depend on the people). Faces the whole-image view cannot resolve
    /// are found there, and only where there is a person: an image without people costs no
    /// extra face runs.
    fn objects_and_small_faces(
        &self,
        image: &RgbImage,
    ) -> Result<(Vec<Object>, Vec<Face>), VisionError> {
        let found = objects::detect(self.object_detector.as_ref(), image, self.object_threshold)?;
        let heads: Vec<Detection> = found
            .iter()
            .filter(|o| o.is_person())
            .map(|o| Detection {
                rect: objects::head_of(&o.rect, image.width(), image.height()),
                extent: o.rect,
                score: o.score,
            })
            .collect();
        let mut faces = Vec::new();
        for view in faces::views_around_heads(image, &heads) {
            faces.extend(faces::detect_in(
                self.face_detector.as_ref(),
                image,
                &view,
                self.face_threshold,
            )?);
        }
        Ok((found, faces))
    }

    /// Turns network outputs into a `DetectLabels` response honouring the request options.
    pub fn describe(
        &self,
        prepared: &Prepared,
        inferred: &Inferred,
        options: &DetectOptions,
    ) -> DetectLabelsResponse {
        let mut labels = Vec::new();
        if options.wants_labels() {
            labels = self.candidate_labels(inferred);
            labels = options.filter_labels(labels);
            for label in &mut labels {
                label.instances = self.instances(&label.name, label.confidence, prepared, inferred);
            }
        }
        let image_properties = options.wants_image_properties().then(|| {
            // Computed here only if `infer` was asked for other features.
            let mut properties = inferred
                .properties
                .clone()
                .unwrap_or_else(|| image_properties(&prepared.image, usize::MAX));
            let max_colors = options.effective_max_dominant_colors();
            properties.dominant_colors.truncate(max_colors);
            properties
        });
        DetectLabelsResponse {
            labels,
            image_properties,
            label_model_version: Some(MODEL_VERSION.to_string()),
            orientation_correction: None,
        }
    }

    /// Every label worth considering, with parents, aliases and categories, before filtering.
    fn candidate_labels(&self, inferred: &Inferred) -> Vec<Label> {
        let t = &self.taxonomy;
        // A label is as likely as the view that sees it best: the centre crop is sharp on the
        // subject, the whole image sees the setting; averaging would dilute both.
        let mut best: std::collections::BTreeMap<usize, f32> = std::collections::BTreeMap::new();
        for view in &inferred.views {
            for scored in t.aggregate(view) {
                let entry = best.entry(scored.label).or_insert(0.0);
                *entry = entry.max(scored.probability);
            }
        }
        let mut labels: Vec<Label> = best
            .into_iter()
            .map(|(index, p)| (index, confidence_of(p)))
            .filter(|(_, confidence)| *confidence >= CONSIDER_FLOOR)
            .map(|(index, confidence)| self.label_from_taxonomy(index, confidence))
            .collect();
        // Each object the detector found raises its label and every parent (as the classifier's
        // classes do) to its confidence; people are counted with the faces.
        let mut detected: std::collections::BTreeMap<usize, f32> = Default::default();
        for object in inferred.objects.iter().filter(|o| !o.is_person()) {
            let label = t.objects[object.class];
            let confidence = object_confidence(object.score);
            for &target in std::iter::once(&label).chain(&t.labels[label].parents) {
                let entry = detected.entry(target).or_insert(0.0);
                *entry = entry.max(confidence);
            }
        }
        for (index, confidence) in detected {
            self.raise_or_add(&mut labels, index, confidence);
        }
        let best = |found: &[Detection]| found.iter().map(|d| d.score * 100.0).reduce(f32::max);
        let best_person = [
            best(&inferred.faces),
            inferred
                .objects
                .iter()
                .filter(|o| o.is_person())
                .map(|o| object_confidence(o.score))
                .reduce(f32::max),
        ]
        .into_iter()
        .flatten()
        .reduce(f32::max);
        if let Some(confidence) = best_person {
            if let Some(person) = t.label_index("Person") {
                self.raise_or_add(&mut labels, person, confidence);
            }
            labels.push(Label {
                name: "Human".into(),
                confidence,
                aliases: vec![NamedItem::new("Person")],
                categories: vec![NamedItem::new("Person Description")],
                ..Default::default()
            });
        }
        if let Some(best_face) = best(&inferred.faces) {
            labels.push(Label {
                name: "Face".into(),
                confidence: best_face,
                parents: vec![NamedItem::new("Person")],
                categories: vec![NamedItem::new("Person Description")],
                ..Default::default()
            });
        }
        if let (Some(best_line), Some(text)) = (best(&inferred.text), t.label_index("Text")) {
            self.raise_or_add(&mut labels, text, best_line);
        }
        for cue in scene::labels(&inferred.scene) {
            match labels.iter_mut().find(|l| l.name == cue.name) {
                Some(existing) => existing.confidence = existing.confidence.max(cue.confidence),
                None => labels.push(Label {
                    name: cue.name.into(),
                    confidence: cue.confidence,
                    parents: cue.parents.iter().map(|p| NamedItem::new(*p)).collect(),
                    categories: cue.categories.iter().map(|c| NamedItem::new(*c)).collect(),
                    ..Default::default()
                }),
            }
        }
        labels
    }

    /// A detector's evidence for a taxonomy label: the label the classifier gave is raised to
    /// at least `confidence` (one entry, the better confidence); a label it did not give is
    /// added, with its parents and categories.
    fn raise_or_add(&self, labels: &mut Vec<Label>, index: usize, confidence: f32) {
        let name = &self.taxonomy.labels[index].name;
        match labels.iter_mut().find(|l| &l.name == name) {
            Some(label) => label.confidence = label.confidence.max(confidence),
            None => labels.push(self.label_from_taxonomy(index, confidence)),
        }
    }

    fn label_from_taxonomy(&self, index: usize, confidence: f32) -> Label {
        let def = &self.taxonomy.labels[index];
        // Nearest parents first: a parent with more ancestors of its own is more specific.
        let mut parents: Vec<usize> = def.parents.clone();
        parents.sort_by(|&a, &b| {
            self.taxonomy.labels[b]
                .parents
                .len()
                .cmp(&self.taxonomy.labels[a].parents.len())
                .then(a.cmp(&b))
        });
        Label {
            name: def.name.clone(),
            confidence,
            instances: Vec::new(),
            parents: parents
                .iter()
                .map(|&p| NamedItem::new(self.taxonomy.labels[p].name.clone()))
                .collect(),
            aliases: def.aliases.iter().map(NamedItem::new).collect(),
            categories: def.categories.iter().map(NamedItem::new).collect(),
        }
    }

    fn instances(
        &self,
        name: &str,
        confidence: f32,
        prepared: &Prepared,
        inferred: &Inferred,
    ) -> Vec<Instance> {
        let instance = |bounding_box: BoundingBox, confidence: f32| Instance {
            bounding_box,
            confidence,
            dominant_colors: Vec::new(),
        };
        let boxed = |found: &[Detection]| {
            found
                .iter()
                .map(|d| instance(bounding_box(&d.rect), d.score * 100.0))
                .collect()
        };
        let detected = !inferred.faces.is_empty() || inferred.objects.iter().any(Object::is_person);
        match name {
            "Face" => return boxed(&inferred.faces),
            "Person" if detected => {
                return person_extents(inferred)
                    .into_iter()
                    .map(|(extent, confidence)| instance(bounding_box(&extent), confidence))
                    .collect();
            }
            "Text" => return boxed(&inferred.text),
            // Rekognition boxes people under "Person" only.
            "Human" if detected => return Vec::new(),
            _ => {}
        }
        let t = &self.taxonomy;
        let Some(index) = t.label_index(name) else {
            return Vec::new();
        };
        if !t.labels[index].boxable {
            return Vec::new();
        }
        // A label the detector has a class for, at, above or below it, is boxed by the detector
        // alone: its boxes are tight and one per object. The objects of the label or below it
        // (a Cutlery label boxes the forks, knives and spoons), else those of the detected label
        // this one refines (a Tabby Cat is the cat the detector boxed).
        // The boxes of the objects whose label `related` accepts.
        let boxes_of = |related: &dyn Fn(usize) -> bool| -> Vec<Instance> {
            inferred
                .objects
                .iter()
                .filter(|o| !o.is_person() && related(t.objects[o.class]))
                .map(|o| instance(bounding_box(&o.rect), object_confidence(o.score)))
                .collect()
        };
        let detector_knows = t.objects.iter().enumerate().any(|(class, &object)| {
            class != objects::PERSON
                && (t.is_at_or_below(object, index) || t.is_at_or_below(index, object))
        });
        if detector_knows {
            let within = boxes_of(&|object| t.is_at_or_below(object, index));
            return if within.is_empty() {
                boxes_of(&|object| t.is_at_or_below(index, object))
            } else {
                within
            };
        }
        let mut classes: Vec<(usize, f32)> = inferred
            .probabilities
            .iter()
            .enumerate()
            .filter(|&(class, &p)| p >= 0.01 && self.taxonomy.is_within(class, index))
            .map(|(class, &p)| (class, p))
            .collect();
        if classes.is_empty() {
            return Vec::new();
        }
        // The map mixes the likeliest few.
        classes.sort_by(|a, b| b.1.total_cmp(&a.1));
        inferred
            .features
            .locate(&self.classifier_head, &classes, prepared.frame)
            .into_iter()
            .map(|l| instance(l.bounding_box, confidence * l.strength))
            .collect()
    }

    /// All stages for one image.
    pub fn label(&self, bytes: &[u8], options: &DetectOptions) -> Result<Labeled, LabelError> {
        let prepared = LocalLabeler::prepare(bytes, &self.limits)?;
        Ok(self.infer_and_describe(prepared, options)?)
    }

    /// The stages after [`LocalLabeler::prepare`], for callers that prepare images elsewhere.
    pub fn infer_and_describe(
        &self,
        mut prepared: Prepared,
        options: &DetectOptions,
    ) -> Result<Labeled, VisionError> {
        let inferred = self.infer(&mut prepared, options)?;
        let started = Instant::now();
        let response = self.describe(&prepared, &inferred, options);
        prepared.timings.postprocess = ms(started);
        Ok(Labeled {
            probe: prepared.probe,
            response,
            timings: prepared.timings,
            jobs_ms: inferred.jobs_ms,
        })
    }
}

/// Rekognition's confidence is not a probability over 1000 exclusive classes: a photo can be a
/// "Building" with confidence 90 while ImageNet splits its mass between palace, monastery and
/// church. The aggregated probability `p` is reported as `100·√p`, a monotonic calibration under
/// which p ≥ 0.30 reaches the default threshold of 55 and p = 0.9 reads 95.
pub fn confidence_of(probability: f32) -> f32 {
    100.0 * probability.clamp(0.0, 1.0).sqrt()
}

/// The object detector's score as a confidence: `100·s^γ` with γ = ln 0.55 / ln 0.45, so that a
/// score of 0.45 reaches the default threshold of 55. On our photos the detector's true objects
/// scored 0.30–0.82 and most of its mistakes (the moon as a kite, a squirrel as a bird, a circuit
/// board as a clock) 0.31–0.46; coins read as clocks at 0.56–0.66. 0.6 reads 68, 0.8 reads 85.
pub fn object_confidence(score: f32) -> f32 {
    const GAMMA: f32 = 0.7487;
    100.0 * score.clamp(0.0, 1.0).powf(GAMMA)
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::MIN, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&v| (v - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// Both views at 224×224 as `(x - 127) / 128`, NCHW, one tensor each: the centre square (short
/// side 256 → 224) and the whole image; and the frame the box maps refer to (the whole image).
fn classifier_input(image: &RgbImage) -> (Vec<Tensor>, Frame) {
    let (w, h) = image.dimensions();
    let side = w.min(h) as f64 * CLASSIFIER_INPUT as f64 / CLASSIFIER_RESIZE as f64;
    let centre = Region {
        left: (w as f64 - side) / 2.0,
        top: (h as f64 - side) / 2.0,
        width: side,
        height: side,
    };
    let size = CLASSIFIER_INPUT as usize;
    let views = [centre, Region::whole(image)].map(|region| {
        let rgb = resize_region(image, region, CLASSIFIER_INPUT, CLASSIFIER_INPUT);
        Tensor::nchw(&rgb, size, size, |_, v| (v as f32 - 127.0) / 128.0)
    });
    let whole = Frame {
        left: 0.0,
        top: 0.0,
        width: 1.0,
        height: 1.0,
    };
    (views.into(), whole)
}

/// One inference job of one image, and what it produced.
type Job<'a> = Box<dyn FnOnce() -> Output + Send + 'a>;

enum Output {
    View(Result<Vec<Tensor>, VisionError>),
    /// The objects, and the faces found around their people's small heads (before merging).
    Objects(Result<(Vec<Object>, Vec<Face>), VisionError>),
    Faces(Result<Vec<Face>, VisionError>),
    Scene(scene::SceneCues),
    Properties(ImageProperties),
}

/// What a job produced (`None` if it panicked) and how long it ran, in milliseconds.
#[derive(Debug, PartialEq)]
struct Ran<T> {
    output: Option<T>,
    ms: f64,
}

/// Runs `jobs` on `lanes` threads (this one among them), each lane taking the next job in order
/// when it is free; returns the outputs in job order. A job that panics yields `None` instead of
/// taking the process down.
fn run_jobs<T: Send>(lanes: usize, jobs: Vec<Box<dyn FnOnce() -> T + Send + '_>>) -> Vec<Ran<T>> {
    let count = jobs.len();
    let queue = Mutex::new(jobs.into_iter().enumerate());
    let results: Mutex<Vec<Ran<T>>> = Mutex::new(
        (0..count)
            .map(|_| Ran {
                output: None,
                ms: 0.0,
            })
            .collect(),
    );
    let lane = || {
        loop {
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
            let Some((index, job)) = next else { break };
            let started = Instant::now();
            let output = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).ok();
            results.lock().unwrap_or_else(|e| e.into_inner())[index] = Ran {
                output,
                ms: ms(started),
            };
        }
    };
    std::thread::scope(|threads| {
        for _ in 1..lanes.min(count) {
            threads.spawn(lane);
        }
        lane();
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

fn bounding_box(r: &Rect) -> BoundingBox {
    BoundingBox {
        left: r.left,
        top: r.top,
        width: r.width,
        height: r.height,
    }
}

/// One box per person, with its confidence: the object detector's person boxes (tight, whole
/// bodies, also turned away); then, for a face outside every such box (a face filling the frame,
/// too close for a body), the extent grown from the face.
fn person_extents(inferred: &Inferred) -> Vec<(Rect, f32)> {
    let mut extents: Vec<(Rect, f32)> = inferred
        .objects
        .iter()
        .filter(|o| o.is_person())
        .map(|o| (o.rect, object_confidence(o.score)))
        .collect();
    for face in &inferred.faces {
        let (x, y) = face.rect.centre();
        if !extents.iter().any(|(e, _)| e.contains(x, y)) {
            extents.push((extent_from_face(&face.rect), face.score * 100.0));
        }
    }
    extents
}

/// A person's visible extent estimated from the face: head and shoulders down to the chest
/// (about 2.6 face widths wide, 4 face heights tall), clipped to the image.
fn extent_from_face(f: &Rect) -> Rect {
    let cx = f.left + f.width / 2.0;
    let left = (cx - 1.3 * f.width).max(0.0);
    let right = (cx + 1.3 * f.width).min(1.0);
    let top = (f.top - 0.35 * f.height).max(0.0);
    let bottom = (f.top + 4.0 * f.height).min(1.0);
    Rect {
        left,
        top,
        width: right - left,
        height: bottom - top,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn jobs_run_once_each_and_keep_their_order_whatever_the_lanes() {
        for lanes in [1, 2, 3, 8] {
            let runs = AtomicUsize::new(0);
            let jobs: Vec<Box<dyn FnOnce() -> usize + Send + '_>> = (0..9usize)
                .map(|i| {
                    let runs = &runs;
                    Box::new(move || {
                        runs.fetch_add(1, Ordering::SeqCst);
                        // Uneven lengths, so lanes finish out of order.
                        std::thread::sleep(std::time::Duration::from_millis((9 - i) as u64));
                        i * 10
                    }) as Box<dyn FnOnce() -> usize + Send>
                })
                .collect();
            let outputs: Vec<Option<usize>> = run_jobs(lanes, jobs)
                .into_iter()
                .map(|r| r.output)
                .collect();
            assert_eq!(runs.load(Ordering::SeqCst), 9, "{lanes} lanes");
            assert_eq!(
                outputs,
                (0..9usize).map(|i| Some(i * 10)).collect::<Vec<_>>(),
                "{lanes} lanes"
            );
        }
    }

    #[test]
    fn a_panicking_job_yields_none_and_the_others_still_run() {
        let jobs: Vec<Box<dyn FnOnce() -> u8 + Send>> = vec![
            Box::new(|| 1),
            Box::new(|| panic!("a broken job")),
            Box::new(|| 3),
        ];
        let ran = run_jobs(2, jobs);
        assert_eq!(
            ran.iter().map(|r| r.output).collect::<Vec<_>>(),
            vec![Some(1), None, Some(3)]
        );
        assert!(ran.iter().all(|r| r.ms >= 0.0));
    }
}
