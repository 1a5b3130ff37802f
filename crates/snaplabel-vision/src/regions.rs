//! Connected regions of a per-cell map: what both the class activation maps (object boxes) and
//! the text detector's probability map (lines) are turned into.

/// A 4-connected region of cells: its bounding cells (inclusive), how many cells, and the sum
/// and peak of their values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectedRegion {
    pub x0: usize,
    pub y0: usize,
    pub x1: usize,
    pub y1: usize,
    pub cells: usize,
    pub sum: f32,
    pub peak: f32,
}

impl ConnectedRegion {
    pub fn mean(&self) -> f32 {
        self.sum / self.cells as f32
    }
}

/// The 4-connected regions of the cells of `map` (`width × height`, row-major) whose value is
/// `inside`, in the order of their first cell.
pub fn connected_regions(
    map: &[f32],
    width: usize,
    height: usize,
    inside: impl Fn(f32) -> bool,
) -> Vec<ConnectedRegion> {
    debug_assert_eq!(map.len(), width * height);
    let mut seen = vec![false; map.len()];
    let mut found = Vec::new();
    let mut stack = Vec::new();
    for start in 0..map.len() {
        if seen[start] || !inside(map[start]) {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut region = ConnectedRegion {
            x0: width,
            y0: height,
            x1: 0,
            y1: 0,
            cells: 0,
            sum: 0.0,
            peak: f32::MIN,
        };
        while let Some(i) = stack.pop() {
            let (x, y) = (i % width, i / width);
            region.x0 = region.x0.min(x);
            region.x1 = region.x1.max(x);
            region.y0 = region.y0.min(y);
            region.y1 = region.y1.max(y);
            region.cells += 1;
            region.sum += map[i];
            region.peak = region.peak.max(map[i]);
            let neighbours = [
                (x > 0).then(|| i - 1),
                (x + 1 < width).then(|| i + 1),
                (y > 0).then(|| i - width),
                (y + 1 < height).then(|| i + width),
            ];
            for n in neighbours.into_iter().flatten() {
                if !seen[n] && inside(map[n]) {
                    seen[n] = true;
                    stack.push(n);
                }
            }
        }
        found.push(region);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touching_cells_form_one_region_and_diagonal_ones_do_not() {
        // 4×3:  1 1 0 0
        //       0 1 0 2
        //       0 0 2 0
        let map = [1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 2.0, 0.0];
        let found = connected_regions(&map, 4, 3, |v| v > 0.5);
        assert_eq!(found.len(), 3, "{found:?}");
        let first = found[0];
        assert_eq!((first.x0, first.y0, first.x1, first.y1), (0, 0, 1, 1));
        assert_eq!((first.cells, first.sum, first.peak), (3, 3.0, 1.0));
        assert_eq!((found[1].x0, found[1].y0, found[1].cells), (3, 1, 1));
        assert_eq!((found[2].x0, found[2].y0, found[2].mean()), (2, 2, 2.0));
    }
}
