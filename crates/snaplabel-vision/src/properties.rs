//! `ImageProperties`: quality (brightness, sharpness, contrast, 0–100) and dominant colours.
//!
//! Computed on a small copy of the image (at most 256 px per side): the figures describe the
//! photo as a whole, and a small copy makes them cheap and independent of the camera's resolution.

use crate::resize::fit;
use image::RgbImage;
use snaplabel_core::detect::{DominantColor, ImageProperties, ImageQuality};

const ANALYSIS_SIDE: u32 = 256;
const COLOR_SIDE: u32 = 64;
const CLUSTERS: usize = 10;
const ITERATIONS: usize = 12;

pub fn image_properties(image: &RgbImage, max_colors: usize) -> ImageProperties {
    let small = fit(image, ANALYSIS_SIDE);
    ImageProperties {
        quality: Some(quality(&small)),
        dominant_colors: dominant_colors(&fit(&small, COLOR_SIDE), max_colors),
        foreground: None,
        background: None,
    }
}

fn luma(p: &image::Rgb<u8>) -> f32 {
    0.2126 * p[0] as f32 + 0.7152 * p[1] as f32 + 0.0722 * p[2] as f32
}

/// Brightness: mean luminance. Contrast: RMS contrast (standard deviation of luminance), where a
/// deviation of 80 (a well-exposed, punchy photo) reads as 100. Sharpness: variance of the
/// Laplacian, mapped so that a soft image stays low and a crisp one approaches 100.
pub fn quality(image: &RgbImage) -> ImageQuality {
    let (w, h) = image.dimensions();
    let l: Vec<f32> = image.pixels().map(luma).collect();
    let n = l.len().max(1) as f32;
    let mean = l.iter().sum::<f32>() / n;
    let var = l.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let mut lap_sum = 0.0f64;
    let mut lap_sq = 0.0f64;
    let mut count = 0usize;
    if w >= 3 && h >= 3 {
        let (w, h) = (w as usize, h as usize);
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                let i = y * w + x;
                let v = (4.0 * l[i] - l[i - 1] - l[i + 1] - l[i - w] - l[i + w]) as f64;
                lap_sum += v;
                lap_sq += v * v;
                count += 1;
            }
        }
    }
    let lap_var = if count > 0 {
        (lap_sq / count as f64 - (lap_sum / count as f64).powi(2)) as f32
    } else {
        0.0
    };
    ImageQuality {
        brightness: round2(mean / 255.0 * 100.0),
        contrast: round2((var.sqrt() / 80.0 * 100.0).min(100.0)),
        sharpness: round2(100.0 * (1.0 - (-lap_var / 400.0).exp())),
    }
}

fn round2(v: f32) -> f32 {
    (v * 100.0).round() / 100.0
}

/// K-means in RGB with a deterministic farthest-point start; clusters that land on the same CSS
/// colour are merged, as a person would not call them different colours.
pub fn dominant_colors(image: &RgbImage, max_colors: usize) -> Vec<DominantColor> {
    let pixels: Vec<[f32; 3]> = image
        .pixels()
        .map(|p| [p[0] as f32, p[1] as f32, p[2] as f32])
        .collect();
    if pixels.is_empty() || max_colors == 0 {
        return Vec::new();
    }
    // Farthest-point seeding; each pixel's distance to its nearest centre so far is kept, so a
    // new centre costs one pass over the pixels.
    let mut centers = vec![mean_color(&pixels)];
    let mut to_nearest: Vec<f32> = pixels.iter().map(|p| nearest(p, &centers).1).collect();
    while centers.len() < CLUSTERS.min(pixels.len()) {
        let Some((index, &distance)) = to_nearest
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
        else {
            break;
        };
        if distance < 1.0 {
            break;
        }
        let center = pixels[index];
        centers.push(center);
        for (d, p) in to_nearest.iter_mut().zip(&pixels) {
            *d = d.min(nearest(p, &[center]).1);
        }
    }
    let mut assignment = vec![0usize; pixels.len()];
    for _ in 0..ITERATIONS {
        for (a, p) in assignment.iter_mut().zip(&pixels) {
            *a = nearest(p, &centers).0;
        }
        let mut sums = vec![([0.0f64; 3], 0usize); centers.len()];
        for (a, p) in assignment.iter().zip(&pixels) {
            for (sum, v) in sums[*a].0.iter_mut().zip(p) {
                *sum += *v as f64;
            }
            sums[*a].1 += 1;
        }
        for (center, (sum, count)) in centers.iter_mut().zip(&sums) {
            if *count > 0 {
                *center = [0, 1, 2].map(|c| (sum[c] / *count as f64) as f32);
            }
        }
    }
    let mut counts = vec![0usize; centers.len()];
    for a in &assignment {
        counts[*a] += 1;
    }
    // Merge clusters by CSS name, weighting their colours by pixel count.
    let mut merged: Vec<([f64; 3], usize, &'static str)> = Vec::new();
    for (center, count) in centers.iter().zip(&counts) {
        if *count == 0 {
            continue;
        }
        let rgb = center.map(|v| v.round().clamp(0.0, 255.0) as u8);
        let name = css_name(rgb);
        match merged.iter_mut().find(|m| m.2 == name) {
            Some(m) => {
                for (sum, v) in m.0.iter_mut().zip(center) {
                    *sum += *v as f64 * *count as f64;
                }
                m.1 += count;
            }
            None => merged.push((
                [0, 1, 2].map(|c| center[c] as f64 * *count as f64),
                *count,
                name,
            )),
        }
    }
    merged.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(b.2)));
    let total = pixels.len() as f32;
    merged
        .into_iter()
        .take(max_colors)
        .map(|(sum, count, _)| {
            let rgb = sum.map(|s| (s / count as f64).round().clamp(0.0, 255.0) as u8);
            DominantColor {
                red: rgb[0],
                blue: rgb[2],
                green: rgb[1],
                hex_code: format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]),
                css_color: css_name(rgb).to_string(),
                simplified_color: simplified_name(rgb).to_string(),
                pixel_percent: round2(count as f32 / total * 100.0),
            }
        })
        .collect()
}

fn mean_color(pixels: &[[f32; 3]]) -> [f32; 3] {
    let n = pixels.len() as f32;
    [0, 1, 2].map(|c| pixels.iter().map(|p| p[c]).sum::<f32>() / n)
}

fn nearest(p: &[f32; 3], centers: &[[f32; 3]]) -> (usize, f32) {
    centers
        .iter()
        .enumerate()
        .map(|(i, c)| (i, (0..3).map(|k| (p[k] - c[k]).powi(2)).sum::<f32>()))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, 0.0))
}

/// "Redmean" colour distance: cheap and much closer to perception than plain RGB distance.
fn distance(a: [u8; 3], b: [u8; 3]) -> f32 {
    let rmean = (a[0] as f32 + b[0] as f32) / 2.0;
    let (dr, dg, db) = (
        a[0] as f32 - b[0] as f32,
        a[1] as f32 - b[1] as f32,
        a[2] as f32 - b[2] as f32,
    );
    ((2.0 + rmean / 256.0) * dr * dr + 4.0 * dg * dg + (2.0 + (255.0 - rmean) / 256.0) * db * db)
        .sqrt()
}

/// The nearest CSS named colour.
pub fn css_name(rgb: [u8; 3]) -> &'static str {
    CSS_COLORS
        .iter()
        .min_by(|a, b| distance(rgb, a.1).total_cmp(&distance(rgb, b.1)))
        .map(|c| c.0)
        .unwrap_or("black")
}

/// The colour a person would say, from hue, saturation and lightness.
pub fn simplified_name(rgb: [u8; 3]) -> &'static str {
    let [r, g, b] = rgb.map(|v| v as f32 / 255.0);
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let l = (max + min) / 2.0;
    let d = max - min;
    let s = if d == 0.0 {
        0.0
    } else {
        d / (1.0 - (2.0 * l - 1.0).abs())
    };
    if l < 0.12 || (l < 0.2 && s < 0.4) {
        return "black";
    }
    if s < 0.15 {
        return if l > 0.85 { "white" } else { "grey" };
    }
    if l > 0.93 {
        return "white";
    }
    let h = if d == 0.0 {
        0.0
    } else if max == r {
        60.0 * (((g - b) / d) % 6.0)
    } else if max == g {
        60.0 * ((b - r) / d + 2.0)
    } else {
        60.0 * ((r - g) / d + 4.0)
    };
    let h = if h < 0.0 { h + 360.0 } else { h };
    match h {
        h if !(15.0..345.0).contains(&h) => {
            if l > 0.7 {
                "pink"
            } else if l < 0.35 && s < 0.6 {
                "brown"
            } else {
                "red"
            }
        }
        h if h < 45.0 => {
            if l < 0.45 || s < 0.35 {
                "brown"
            } else {
                "orange"
            }
        }
        h if h < 70.0 => {
            if l < 0.35 {
                "brown"
            } else {
                "yellow"
            }
        }
        h if h < 165.0 => "green",
        h if h < 195.0 => "teal",
        h if h < 255.0 => "blue",
        h if h < 290.0 => "purple",
        _ => {
            if l > 0.6 {
                "pink"
            } else {
                "purple"
            }
        }
    }
}

/// The CSS Color Module Level 4 named colours.
const CSS_COLORS: &[(&str, [u8; 3])] = &[
    ("aliceblue", [240, 248, 255]),
    ("antiquewhite", [250, 235, 215]),
    ("aqua", [0, 255, 255]),
    ("aquamarine", [127, 255, 212]),
    ("azure", [240, 255, 255]),
    ("beige", [245, 245, 220]),
    ("bisque", [255, 228, 196]),
    ("black", [0, 0, 0]),
    ("blanchedalmond", [255, 235, 205]),
    ("blue", [0, 0, 255]),
    ("blueviolet", [138, 43, 226]),
    ("brown", [165, 42, 42]),
    ("burlywood", [222, 184, 135]),
    ("cadetblue", [95, 158, 160]),
    ("chartreuse", [127, 255, 0]),
    ("chocolate", [210, 105, 30]),
    ("coral", [255, 127, 80]),
    ("cornflowerblue", [100, 149, 237]),
    ("cornsilk", [255, 248, 220]),
    ("crimson", [220, 20, 60]),
    ("darkblue", [0, 0, 139]),
    ("darkcyan", [0, 139, 139]),
    ("darkgoldenrod", [184, 134, 11]),
    ("darkgray", [169, 169, 169]),
    ("darkgreen", [0, 100, 0]),
    ("darkkhaki", [189, 183, 107]),
    ("darkmagenta", [139, 0, 139]),
    ("darkolivegreen", [85, 107, 47]),
    ("darkorange", [255, 140, 0]),
    ("darkorchid", [153, 50, 204]),
    ("darkred", [139, 0, 0]),
    ("darksalmon", [233, 150, 122]),
    ("darkseagreen", [143, 188, 143]),
    ("darkslateblue", [72, 61, 139]),
    ("darkslategray", [47, 79, 79]),
    ("darkturquoise", [0, 206, 209]),
    ("darkviolet", [148, 0, 211]),
    ("deeppink", [255, 20, 147]),
    ("deepskyblue", [0, 191, 255]),
    ("dimgray", [105, 105, 105]),
    ("dodgerblue", [30, 144, 255]),
    ("firebrick", [178, 34, 34]),
    ("floralwhite", [255, 250, 240]),
    ("forestgreen", [34, 139, 34]),
    ("fuchsia", [255, 0, 255]),
    ("gainsboro", [220, 220, 220]),
    ("ghostwhite", [248, 248, 255]),
    ("gold", [255, 215, 0]),
    ("goldenrod", [218, 165, 32]),
    ("gray", [128, 128, 128]),
    ("green", [0, 128, 0]),
    ("greenyellow", [173, 255, 47]),
    ("honeydew", [240, 255, 240]),
    ("hotpink", [255, 105, 180]),
    ("indianred", [205, 92, 92]),
    ("indigo", [75, 0, 130]),
    ("ivory", [255, 255, 240]),
    ("khaki", [240, 230, 140]),
    ("lavender", [230, 230, 250]),
    ("lavenderblush", [255, 240, 245]),
    ("lawngreen", [124, 252, 0]),
    ("lemonchiffon", [255, 250, 205]),
    ("lightblue", [173, 216, 230]),
    ("lightcoral", [240, 128, 128]),
    ("lightcyan", [224, 255, 255]),
    ("lightgoldenrodyellow", [250, 250, 210]),
    ("lightgray", [211, 211, 211]),
    ("lightgreen", [144, 238, 144]),
    ("lightpink", [255, 182, 193]),
    ("lightsalmon", [255, 160, 122]),
    ("lightseagreen", [32, 178, 170]),
    ("lightskyblue", [135, 206, 250]),
    ("lightslategray", [119, 136, 153]),
    ("lightsteelblue", [176, 196, 222]),
    ("lightyellow", [255, 255, 224]),
    ("lime", [0, 255, 0]),
    ("limegreen", [50, 205, 50]),
    ("linen", [250, 240, 230]),
    ("maroon", [128, 0, 0]),
    ("mediumaquamarine", [102, 205, 170]),
    ("mediumblue", [0, 0, 205]),
    ("mediumorchid", [186, 85, 211]),
    ("mediumpurple", [147, 112, 219]),
    ("mediumseagreen", [60, 179, 113]),
    ("mediumslateblue", [123, 104, 238]),
    ("mediumspringgreen", [0, 250, 154]),
    ("mediumturquoise", [72, 209, 204]),
    ("mediumvioletred", [199, 21, 133]),
    ("midnightblue", [25, 25, 112]),
    ("mintcream", [245, 255, 250]),
    ("mistyrose", [255, 228, 225]),
    ("moccasin", [255, 228, 181]),
    ("navajowhite", [255, 222, 173]),
    ("navy", [0, 0, 128]),
    ("oldlace", [253, 245, 230]),
    ("olive", [128, 128, 0]),
    ("olivedrab", [107, 142, 35]),
    ("orange", [255, 165, 0]),
    ("orangered", [255, 69, 0]),
    ("orchid", [218, 112, 214]),
    ("palegoldenrod", [238, 232, 170]),
    ("palegreen", [152, 251, 152]),
    ("paleturquoise", [175, 238, 238]),
    ("palevioletred", [219, 112, 147]),
    ("papayawhip", [255, 239, 213]),
    ("peachpuff", [255, 218, 185]),
    ("peru", [205, 133, 63]),
    ("pink", [255, 192, 203]),
    ("plum", [221, 160, 221]),
    ("powderblue", [176, 224, 230]),
    ("purple", [128, 0, 128]),
    ("rebeccapurple", [102, 51, 153]),
    ("red", [255, 0, 0]),
    ("rosybrown", [188, 143, 143]),
    ("royalblue", [65, 105, 225]),
    ("saddlebrown", [139, 69, 19]),
    ("salmon", [250, 128, 114]),
    ("sandybrown", [244, 164, 96]),
    ("seagreen", [46, 139, 87]),
    ("seashell", [255, 245, 238]),
    ("sienna", [160, 82, 45]),
    ("silver", [192, 192, 192]),
    ("skyblue", [135, 206, 235]),
    ("slateblue", [106, 90, 205]),
    ("slategray", [112, 128, 144]),
    ("snow", [255, 250, 250]),
    ("springgreen", [0, 255, 127]),
    ("steelblue", [70, 130, 180]),
    ("tan", [210, 180, 140]),
    ("teal", [0, 128, 128]),
    ("thistle", [216, 191, 216]),
    ("tomato", [255, 99, 71]),
    ("turquoise", [64, 224, 208]),
    ("violet", [238, 130, 238]),
    ("wheat", [245, 222, 179]),
    ("white", [255, 255, 255]),
    ("whitesmoke", [245, 245, 245]),
    ("yellow", [255, 255, 0]),
    ("yellowgreen", [154, 205, 50]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_people_say() {
        assert_eq!(css_name([255, 0, 0]), "red");
        assert_eq!(css_name([250, 250, 250]), "snow");
        assert_eq!(simplified_name([250, 250, 250]), "white");
        assert_eq!(simplified_name([10, 10, 10]), "black");
        assert_eq!(simplified_name([128, 128, 128]), "grey");
        assert_eq!(simplified_name([220, 30, 30]), "red");
        assert_eq!(simplified_name([30, 160, 40]), "green");
        assert_eq!(simplified_name([40, 80, 220]), "blue");
        assert_eq!(simplified_name([250, 200, 20]), "yellow");
        assert_eq!(simplified_name([240, 140, 20]), "orange");
        assert_eq!(simplified_name([110, 60, 20]), "brown");
        assert_eq!(simplified_name([140, 40, 180]), "purple");
        assert_eq!(simplified_name([250, 150, 200]), "pink");
    }

    #[test]
    fn two_colour_image_has_two_dominant_colours_with_their_shares() {
        let img = RgbImage::from_fn(64, 64, |x, _| {
            if x < 48 {
                image::Rgb([200, 20, 20])
            } else {
                image::Rgb([20, 20, 200])
            }
        });
        let colors = dominant_colors(&img, 10);
        assert_eq!(colors.len(), 2, "{colors:?}");
        assert_eq!(colors[0].simplified_color, "red");
        assert!((colors[0].pixel_percent - 75.0).abs() < 0.01);
        assert_eq!(colors[1].simplified_color, "blue");
        assert_eq!(colors[0].hex_code, "#c81414");
    }

    #[test]
    fn quality_tracks_brightness_contrast_and_sharpness() {
        let flat = RgbImage::from_pixel(64, 64, image::Rgb([128, 128, 128]));
        let q = quality(&flat);
        assert!(
            (q.brightness - 50.2).abs() < 0.5 && q.contrast == 0.0 && q.sharpness == 0.0,
            "{q:?}"
        );
        let checker = RgbImage::from_fn(64, 64, |x, y| {
            if (x / 2 + y / 2) % 2 == 0 {
                image::Rgb([0, 0, 0])
            } else {
                image::Rgb([255, 255, 255])
            }
        });
        let q = quality(&checker);
        assert!(q.contrast > 99.0 && q.sharpness > 99.0, "{q:?}");
    }
}
