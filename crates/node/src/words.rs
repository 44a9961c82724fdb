//! The words of pairing codes: 256 common nouns, easy to say and to spell, read aloud from one screen
//! to another; two of them carry 16 bits of a code.

/// The words, each a byte of a code.
pub(crate) const WORDS: [&str; 256] = [
    "acid", "acorn", "actor", "adult", "agent", "alarm", "album", "alley", "amber", "anchor", "angle", "ankle",
    "apple", "apron", "arena", "arrow", "artist", "atlas", "attic", "autumn", "avocado", "badge", "bagel", "baker",
    "bamboo", "banana", "banjo", "barn", "basket", "beach", "beacon", "beard", "beaver", "bench", "berry", "bicycle",
    "bison", "blanket", "blossom", "board", "bottle", "bracket", "branch", "bread", "breeze", "brick", "bridge",
    "broom", "bubble", "bucket", "buffalo", "butter", "button", "cabin", "cactus", "camel", "camera", "candle",
    "canoe", "canyon", "carpet", "carrot", "castle", "cattle", "cedar", "cello", "chalk", "cherry", "chess", "chicken",
    "chimney", "circle", "citrus", "cliff", "clock", "cloud", "clover", "coach", "cobalt", "cocoa", "comet", "copper",
    "coral", "cotton", "cougar", "cousin", "crane", "crayon", "cricket", "crystal", "cupboard", "curtain", "cushion",
    "daisy", "dancer", "delta", "desert", "diamond", "dinner", "dolphin", "donkey", "dragon", "drum", "eagle", "earth",
    "easel", "echo", "eclipse", "elbow", "ember", "engine", "falcon", "feather", "fence", "fern", "ferry", "fiddle",
    "finch", "flame", "flute", "forest", "fossil", "fountain", "fox", "garden", "garlic", "gecko", "ginger", "giraffe",
    "glacier", "glove", "goose", "granite", "grape", "guitar", "hammer", "harbor", "harvest", "hazel", "helmet",
    "heron", "honey", "horizon", "hornet", "igloo", "island", "ivory", "jacket", "jaguar", "jelly", "jungle", "kayak",
    "kettle", "kitten", "koala", "ladder", "lagoon", "lantern", "lemon", "lettuce", "lily", "lizard", "llama",
    "lobster", "magnet", "mango", "maple", "marble", "meadow", "melon", "meteor", "mirror", "mitten", "monkey",
    "moose", "mountain", "muffin", "mushroom", "needle", "nest", "noodle", "nutmeg", "oasis", "ocean", "olive",
    "onion", "orange", "orchid", "otter", "owl", "oyster", "paddle", "palace", "panda", "panther", "parrot", "peach",
    "pebble", "pelican", "pencil", "pepper", "piano", "pigeon", "pillow", "pilot", "pine", "planet", "plum", "pocket",
    "pony", "poppy", "potato", "puppet", "quartz", "rabbit", "radish", "rainbow", "raven", "ribbon", "river", "robin",
    "rocket", "saddle", "salmon", "sandal", "scarf", "seal", "shadow", "shell", "silver", "sketch", "sled", "snail",
    "sparrow", "spider", "spinach", "spoon", "squirrel", "staple", "stone", "storm", "sugar", "summit", "sunset",
    "swan", "table", "teapot", "tiger", "timber", "toast", "tomato", "tulip", "tunnel", "turtle", "umbrella", "valley",
];
