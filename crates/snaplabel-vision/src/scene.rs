//! Scene words the classifier cannot say: ImageNet has no "sky" and no "plant" class for a
//! meadow, yet those are among the first words people use. They are read from colour regions:
//!
//! - **Sky**: the top third is mostly smooth and sky-coloured (blue, or bright and colourless),
//!   with real blue among it: a white studio wall is smooth and bright too.
//! - **Vegetation**: a large share of textured foliage-green pixels → Plant, Vegetation. Leaves
//!   are never one flat colour; a green wall, a green screen or a green square are.
//!
//! Confidences start at Rekognition's default threshold (55) where the cue is just strong
//! enough and grow with its strength, so weak cues never reach a default output.

use crate::resize::fit;
use image::RgbImage;

const SIDE: u32 = 128;
/// The gradient above which a green pixel is textured: real foliage at 128 px has a median of
/// 9–40 and 86–99% of its green pixels above 4; a flat colour has 0.
const FOLIAGE_TEXTURE: f32 = 4.0;

/// Measured cues, each a share of pixels (0–1).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SceneCues {
    /// Share of the top third that is smooth and sky-coloured.
    pub sky: f32,
    /// Share of the top third that is smooth and blue.
    pub blue_sky: f32,
    /// Share of the image (inside a one-pixel border) that is foliage green and textured.
    pub vegetation: f32,
}

/// A scene label: name, confidence (0–100), parents.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneLabel {
    pub name: &'static str,
    pub confidence: f32,
    pub parents: &'static [&'static str],
    pub categories: &'static [&'static str],
}

fn hsv(p: &image::Rgb<u8>) -> (f32, f32, f32) {
    let [r, g, b] = p.0.map(|v| v as f32 / 255.0);
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let d = max - min;
    let s = if max == 0.0 { 0.0 } else { d / max };
    let h = if d == 0.0 {
        0.0
    } else if max == r {
        60.0 * (((g - b) / d).rem_euclid(6.0))
    } else if max == g {
        60.0 * ((b - r) / d + 2.0)
    } else {
        60.0 * ((r - g) / d + 4.0)
    };
    (h, s, max)
}

pub fn cues(image: &RgbImage) -> SceneCues {
    let small = fit(image, SIDE);
    let (w, h) = small.dimensions();
    if w < 3 || h < 6 {
        return SceneCues::default();
    }
    let luma = |x: u32, y: u32| {
        let p = small.get_pixel(x, y);
        0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32
    };
    // Central differences of luma, summed over both axes (0–510).
    let gradient = |x: u32, y: u32| {
        (luma(x + 1, y) - luma(x - 1, y)).abs() + (luma(x, y + 1) - luma(x, y - 1)).abs()
    };
    // One pass inside a one-pixel border: sky is looked for in the top third (h ≥ 6, so it has
    // rows), vegetation everywhere.
    let top = h / 3;
    let (mut sky, mut blue_sky, mut counted) = (0usize, 0usize, 0usize);
    let (mut green, mut inside) = (0usize, 0usize);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            inside += 1;
            let (hue, sat, val) = hsv(small.get_pixel(x, y));
            let texture = gradient(x, y);
            if y < top {
                counted += 1;
                let blue = (185.0..=250.0).contains(&hue) && sat > 0.12 && val > 0.35;
                let pale = sat < 0.12 && val > 0.7;
                if texture < 18.0 && (blue || pale) {
                    sky += 1;
                    blue_sky += blue as usize;
                }
            }
            if (65.0..=165.0).contains(&hue) && sat > 0.2 && val > 0.12 && texture > FOLIAGE_TEXTURE
            {
                green += 1;
            }
        }
    }
    SceneCues {
        sky: sky as f32 / counted.max(1) as f32,
        blue_sky: blue_sky as f32 / counted.max(1) as f32,
        vegetation: green as f32 / inside.max(1) as f32,
    }
}

/// Maps a cue strength in `[start, 1]` to a confidence in `[55, 95]`.
fn confidence(strength: f32, start: f32) -> f32 {
    55.0 + 40.0 * ((strength - start) / (1.0 - start)).clamp(0.0, 1.0)
}

pub fn labels(cues: &SceneCues) -> Vec<SceneLabel> {
    const NATURE: &[&str] = &["Nature and Outdoors"];
    let mut out = Vec::new();
    if cues.sky >= 0.5 && cues.blue_sky >= 0.2 {
        let c = confidence(cues.sky, 0.5);
        out.push(SceneLabel {
            name: "Sky",
            confidence: c,
            parents: &["Outdoors", "Nature"],
            categories: NATURE,
        });
        out.push(SceneLabel {
            name: "Outdoors",
            confidence: c,
            parents: &[],
            categories: NATURE,
        });
    }
    if cues.vegetation >= 0.3 {
        let c = confidence(cues.vegetation, 0.3);
        out.push(SceneLabel {
            name: "Vegetation",
            confidence: c,
            parents: &["Plant", "Nature"],
            categories: &["Plants and Flowers"],
        });
        out.push(SceneLabel {
            name: "Plant",
            confidence: c,
            parents: &["Nature"],
            categories: &["Plants and Flowers"],
        });
        out.push(SceneLabel {
            name: "Nature",
            confidence: c,
            parents: &[],
            categories: NATURE,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blue_top_is_sky_and_green_image_is_vegetation() {
        // Leaves: greens of varying lightness.
        let img = RgbImage::from_fn(120, 90, |x, y| {
            if y < 40 {
                image::Rgb([90, 150, 230])
            } else {
                let shade = ((x * 7 + y * 13) % 5) as u8 * 14;
                image::Rgb([30 + shade / 2, 110 + shade, 30 + shade / 2])
            }
        });
        let c = cues(&img);
        assert!(c.sky > 0.9 && c.vegetation > 0.5, "{c:?}");
        let names: Vec<&str> = labels(&c).iter().map(|l| l.name).collect();
        assert!(
            names.contains(&"Sky") && names.contains(&"Plant"),
            "{names:?}"
        );
    }

    #[test]
    fn a_flat_green_is_not_vegetation() {
        let img = RgbImage::from_pixel(120, 90, image::Rgb([40, 140, 40]));
        let c = cues(&img);
        assert_eq!(c.vegetation, 0.0, "{c:?}");
        assert!(labels(&c).is_empty());
    }

    #[test]
    fn a_white_studio_wall_is_not_sky() {
        let img = RgbImage::from_fn(120, 90, |_, y| {
            if y < 50 {
                image::Rgb([245, 245, 245])
            } else {
                image::Rgb([200, 40, 40])
            }
        });
        assert!(labels(&cues(&img)).iter().all(|l| l.name != "Sky"));
    }

    #[test]
    fn a_textured_grey_image_has_no_scene_words() {
        let img = RgbImage::from_fn(120, 90, |x, y| {
            if (x + y) % 2 == 0 {
                image::Rgb([60, 60, 60])
            } else {
                image::Rgb([200, 200, 200])
            }
        });
        assert!(labels(&cues(&img)).is_empty());
    }
}
