// Original file: proto/advclip/v1/run.proto


/**
 * Evaluation during training (services/run/spec.ts EvaluationSpec): every
 * `every` steps and after the last, EVAL rounds on a class-balanced subset of
 * the test split, seeded by the run's seed.
 */
export interface EvaluationSpec {
  /**
   * Steps between evaluations; 0: no evaluation.
   */
  'every'?: (number);
  /**
   * none, fgsm or pgd.
   */
  'attack'?: (string);
  /**
   * Test images evaluated (fewer when the test split has fewer).
   */
  'limit'?: (number);
  /**
   * ℓ∞ radius of the attack in [0,1] pixels.
   */
  'epsilon'?: (number | string);
  /**
   * PGD steps (step epsilon/4, random start).
   */
  'steps'?: (number);
}

/**
 * Evaluation during training (services/run/spec.ts EvaluationSpec): every
 * `every` steps and after the last, EVAL rounds on a class-balanced subset of
 * the test split, seeded by the run's seed.
 */
export interface EvaluationSpec__Output {
  /**
   * Steps between evaluations; 0: no evaluation.
   */
  'every': (number);
  /**
   * none, fgsm or pgd.
   */
  'attack': (string);
  /**
   * Test images evaluated (fewer when the test split has fewer).
   */
  'limit': (number);
  /**
   * ℓ∞ radius of the attack in [0,1] pixels.
   */
  'epsilon': (number);
  /**
   * PGD steps (step epsilon/4, random start).
   */
  'steps': (number);
}
