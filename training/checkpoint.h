// Checkpoints: a directory any tool can read.
//   model.json   format, environment, architecture, normalisation, loss (with jac_std), step,
//                the list of tensors, and the full training config
//   W0.npy b0.npy W1.npy ...   W_l of shape (out, in), b_l of shape (out,), in the model dtype
//   adam_m.npy adam_v.npy      flat (num_params,) optimizer moments, when saved for resuming
//   env_model.xml|.json        for a config with env_model: a copy of the model file, which the
//                              config in model.json names (relative to the checkpoint); model.json
//                              records the original path as env_model_source
// A checkpoint is written to a temporary directory beside its target and renamed into place.
#pragma once

#include <string>

#include "training/trainer.h"

namespace phydream::training {

/// Writes `state` to directory `dir` in `dtype` ("f32" | "f64"), replacing any checkpoint there.
void save_checkpoint(const std::string& dir, const ModelState& state, const std::string& dtype,
                     bool with_optimizer = true);

/// Reads a checkpoint; InputError naming the file and field for anything missing or malformed.
/// `dtype` receives the stored precision.
ModelState load_checkpoint(const std::string& dir, std::string* dtype = nullptr);

}  // namespace phydream::training
