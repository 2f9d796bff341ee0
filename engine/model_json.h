// PhyDream's JSON model format, and load_model(), which picks a loader by file extension.
//
// The JSON format describes the same models as the MJCF subset (engine/mjcf.h) with the same
// semantics and defaults, compiled by the same code (engine/model_compile.h): a tree of bodies
// with joints, geoms, sites and an inertial, default classes, motors, options and keyframes. The
// schema, with an example, is in docs/model_json.md. Differences from MJCF: angles are always in
// radians (there is no compiler angle), objects replace elements and attributes, and nothing is
// ignored: every key must belong to the format (an unknown key is an InputError naming its JSON
// path, e.g. "model.json: $.worldbody.bodies[0].joints[1]: unknown key 'rnage'"); a "comment"
// key with a string value is allowed in every object.
#pragma once

#include <string>

#include "engine/model.h"
#include "engine/model_compile.h"

namespace phydream {

/// Loads a JSON model file. Throws InputError naming the file and the JSON path.
Model load_model_json(const std::string& path);

/// The same from JSON text; `source` names it in messages and Model::source.
Model load_model_json_string(const std::string& text, const std::string& source = "<string>");

/// The parsed tree before compilation (for tests and tools).
ModelSpec parse_model_json_string(const std::string& text, const std::string& source = "<string>");

/// Loads a model by extension: .xml is MJCF, .json the JSON format; anything else is an
/// InputError saying so.
Model load_model(const std::string& path);

}  // namespace phydream
