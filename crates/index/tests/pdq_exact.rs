//! The PDQ index returns exactly what a brute-force scan returns: every code within the
//! radius, no more, each once, on uniform and clustered data, for radii 0..=80.

use aranea_index::pdq_index::{Code, CodeHit, IndexParams, PdqIndex, SearchScratch, hamming};
use proptest::prelude::*;

fn brute_force(codes: &[Code], query: &Code, radius: u32) -> Vec<CodeHit> {
    let mut hits: Vec<CodeHit> = codes
        .iter()
        .enumerate()
        .filter_map(|(id, code)| {
            let distance = hamming(code, query);
            (distance <= radius).then_some(CodeHit {
                distance,
                id: id as u32,
            })
        })
        .collect();
    hits.sort();
    hits
}

/// Flips `count` pseudo-random bits chosen by `seed` (bits may repeat: distance ≤ count).
fn perturb(code: &Code, count: u32, seed: u64) -> Code {
    let mut out = *code;
    let mut state = seed | 1;
    for _ in 0..count {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let bit = (state % 256) as usize;
        out[bit / 64] ^= 1 << (bit % 64);
    }
    out
}

/// Clusters of near-duplicates around random centres, plus one hot spot of many near-copies.
fn clustered() -> impl Strategy<Value = Vec<Code>> {
    (
        prop::collection::vec((any::<[u64; 4]>(), 1usize..12, any::<u64>()), 1..60),
        any::<[u64; 4]>(),
        0usize..200,
    )
        .prop_map(|(centres, hot, hot_size)| {
            let mut codes = Vec::new();
            for (centre, members, seed) in centres {
                codes.push(centre);
                for member in 0..members {
                    codes.push(perturb(
                        &centre,
                        (seed % 40) as u32,
                        seed.wrapping_add(member as u64 * 7919),
                    ));
                }
            }
            codes.extend((0..hot_size).map(|i| perturb(&hot, (i % 9) as u32, i as u64 + 1)));
            codes
        })
}

/// Batches this large are sorted (smaller ones take the single-query path): checked both ways.
const SORTED_BATCH: usize = 200;

fn check(
    codes: Vec<Code>,
    queries: &[Code],
    radius: u32,
    params: IndexParams,
) -> Result<(), TestCaseError> {
    let index = PdqIndex::build(codes.clone(), params).unwrap();
    let mut scratch = SearchScratch::default();
    let mut batch = Vec::new();
    index.search_batch(queries, radius, &mut batch);
    let repeated: Vec<Code> = queries.iter().copied().cycle().take(SORTED_BATCH).collect();
    let mut sorted_batch = Vec::new();
    index.search_batch(&repeated, radius, &mut sorted_batch);
    prop_assert_eq!(sorted_batch.len(), repeated.len());
    let mut scalar_batch = Vec::new();
    index.search_batch_without_simd(queries, radius, &mut scalar_batch);
    let mut scalar_sorted_batch = Vec::new();
    index.search_batch_without_simd(&repeated, radius, &mut scalar_sorted_batch);
    prop_assert_eq!(scalar_sorted_batch.len(), repeated.len());
    for (at, query) in queries.iter().enumerate() {
        let expected = brute_force(&codes, query, radius);
        let mut hits = Vec::new();
        index.search(query, radius, &mut scratch, &mut hits);
        hits.sort();
        prop_assert_eq!(&hits, &expected, "radius {}", radius);
        hits.clear();
        index.search_without_simd(query, radius, &mut scratch, &mut hits);
        hits.sort();
        prop_assert_eq!(&hits, &expected, "without SIMD, radius {}", radius);
        let sorted_answers = sorted_batch.iter().skip(at).step_by(queries.len());
        let scalar_sorted_answers = scalar_sorted_batch.iter().skip(at).step_by(queries.len());
        for batch_hits in [&batch[at], &scalar_batch[at]]
            .into_iter()
            .chain(sorted_answers)
            .chain(scalar_sorted_answers)
        {
            let mut batch_hits = batch_hits.clone();
            batch_hits.sort();
            prop_assert_eq!(&batch_hits, &expected, "batch, radius {}", radius);
        }
    }
    Ok(())
}

fn queries_near(codes: &[Code], picks: &[(usize, u32, u64)], extra: &[Code]) -> Vec<Code> {
    let mut queries: Vec<Code> = picks
        .iter()
        .filter(|_| !codes.is_empty())
        .map(|&(pick, flips, seed)| perturb(&codes[pick % codes.len()], flips, seed))
        .collect();
    queries.extend_from_slice(extra);
    queries
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn multi_index_path_equals_brute_force_on_clustered_data(
        codes in clustered(),
        picks in prop::collection::vec((any::<usize>(), 0u32..48, any::<u64>()), 1..8),
        extra in prop::collection::vec(any::<[u64; 4]>(), 0..3),
        radius in 0u32..=80,
        substrings in 10usize..=24,
    ) {
        // Without the fallback, probing costs C(bits, radius / substrings): keep that sane.
        let radius = radius.min(5 * substrings as u32);
        let queries = queries_near(&codes, &picks, &extra);
        let params = IndexParams { substrings: Some(substrings), multi_index_only: true, ..IndexParams::default() };
        check(codes, &queries, radius, params)?;
    }

    #[test]
    fn default_index_with_scan_fallback_equals_brute_force(
        codes in clustered(),
        picks in prop::collection::vec((any::<usize>(), 0u32..80, any::<u64>()), 1..8),
        radius in 0u32..=80,
    ) {
        let queries = queries_near(&codes, &picks, &[]);
        check(codes, &queries, radius, IndexParams::default())?;
    }

    #[test]
    fn uniform_codes_equal_brute_force(
        codes in prop::collection::vec(any::<[u64; 4]>(), 0..400),
        queries in prop::collection::vec(any::<[u64; 4]>(), 1..4),
        radius in 0u32..=80,
        substrings in prop::option::of(8usize..=16),
    ) {
        let radius = substrings.map_or(radius, |m| radius.min(5 * m as u32));
        let params = IndexParams { substrings, multi_index_only: substrings.is_some(), ..IndexParams::default() };
        check(codes, &queries, radius, params)?;
    }
}

#[test]
fn identical_codes_are_all_returned_once() {
    let codes = vec![[7, 7, 7, 7]; 1000];
    let index = PdqIndex::build(
        codes,
        IndexParams {
            substrings: Some(11),
            multi_index_only: true,
            ..IndexParams::default()
        },
    )
    .unwrap();
    let mut hits = Vec::new();
    index.search(&[7, 7, 7, 7], 0, &mut SearchScratch::default(), &mut hits);
    hits.sort();
    let ids: Vec<u32> = hits.iter().map(|h| h.id).collect();
    assert_eq!(ids, (0..1000).collect::<Vec<u32>>());
    hits.clear();
    index.search_without_simd(&[7, 7, 7, 7], 0, &mut SearchScratch::default(), &mut hits);
    hits.sort();
    let ids: Vec<u32> = hits.iter().map(|h| h.id).collect();
    assert_eq!(ids, (0..1000).collect::<Vec<u32>>());
}

#[test]
fn a_large_index_is_exact_at_the_default_threshold_and_at_70() {
    let centres: Vec<Code> = (0..2_000u64)
        .map(|i| perturb(&[i, !i, i << 7, i.rotate_left(29)], 200, i + 3))
        .collect();
    let codes: Vec<Code> = (0..60_000u64)
        .map(|i| perturb(&centres[(i % 2_000) as usize], (i % 37) as u32, i * 31 + 1))
        .collect();
    let queries: Vec<Code> = (0..40u64)
        .map(|i| perturb(&codes[(i * 1_499) as usize], (i % 33) as u32, i + 99))
        .collect();
    for radius in [0, 31, 70] {
        check(codes.clone(), &queries, radius, IndexParams::default()).unwrap();
        check(
            codes.clone(),
            &queries,
            radius,
            IndexParams {
                substrings: None,
                multi_index_only: true,
                ..IndexParams::default()
            },
        )
        .unwrap();
    }
}

#[test]
fn batches_spanning_several_blocks_with_wide_ids_equal_single_queries_and_brute_force() {
    // 70,000 codes need 17-bit ids in the bucket cells, and 1,100 queries span two of the
    // sorted batch's blocks; a hot spot of identical codes puts many pairs on one id.
    let centres: Vec<Code> = (0..500u64)
        .map(|i| perturb(&[i * 3, !i, i << 9, i.rotate_left(17)], 200, i + 5))
        .collect();
    let mut codes: Vec<Code> = (0..69_000u64)
        .map(|i| perturb(&centres[(i % 500) as usize], (i % 29) as u32, i * 13 + 7))
        .collect();
    codes.extend(std::iter::repeat_n(centres[0], 1_000));
    let queries: Vec<Code> = (0..1_100u64)
        .map(|i| {
            perturb(
                &codes[(i * 61) as usize % codes.len()],
                (i % 40) as u32,
                i + 1,
            )
        })
        .collect();
    let params = IndexParams {
        substrings: None,
        multi_index_only: true,
        ..IndexParams::default()
    };
    let index = PdqIndex::build(codes.clone(), params).unwrap();
    for radius in [0, 31] {
        let mut batch = Vec::new();
        index.search_batch(&queries, radius, &mut batch);
        assert_eq!(batch.len(), queries.len());
        let mut scalar_batch = Vec::new();
        index.search_batch_without_simd(&queries, radius, &mut scalar_batch);
        assert_eq!(scalar_batch.len(), queries.len());
        let mut scratch = SearchScratch::default();
        for ((query, batch_hits), scalar_hits) in queries.iter().zip(&batch).zip(&scalar_batch) {
            let mut scalar_hits = scalar_hits.clone();
            scalar_hits.sort();
            let mut batch_hits = batch_hits.clone();
            batch_hits.sort();
            let mut hits = Vec::new();
            index.search(query, radius, &mut scratch, &mut hits);
            hits.sort();
            let expected = brute_force(&codes, query, radius);
            assert_eq!(hits, expected, "single, radius {radius}");
            hits.clear();
            index.search_without_simd(query, radius, &mut scratch, &mut hits);
            hits.sort();
            assert_eq!(hits, expected, "single without SIMD, radius {radius}");
            assert_eq!(batch_hits, expected, "batch, radius {radius}");
            assert_eq!(scalar_hits, expected, "batch without SIMD, radius {radius}");
        }
    }
}
