// `cosmos completion bash|zsh`: shell completion scripts generated from the
// command tree itself (verbs, flags, flag choices), so a new verb or flag
// completes without anyone editing a script. Installed by the install rules.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cli.h"
#include "common/build_info.h"

namespace cosmos::cli {
namespace {

// What follows a flag on the command line.
enum class ValueKind { kNone, kChoices, kNumber, kText };

struct FlagInfo {
  ValueKind kind = ValueKind::kNone;
  std::vector<std::string> choices;
};

// One command path ("cosmos region create") and what may follow it.
struct Node {
  std::set<std::string> subcommands;
  std::set<std::string> flags;
};

struct Tree {
  std::map<std::string, Node> nodes;
  std::map<std::string, FlagInfo> flags;  // by flag spelling, across the tree
};

// "TEXT:{text,json}" -> {text, json}; empty when the type names no set.
std::vector<std::string> ChoicesOf(const std::string& type_name) {
  std::vector<std::string> out;
  const size_t open = type_name.find('{');
  const size_t close = type_name.find('}', open);
  if (open == std::string::npos || close == std::string::npos) return out;
  std::string item;
  for (size_t i = open + 1; i <= close; ++i) {
    const char c = type_name[i];
    if (c == ',' || c == '}') {
      if (!item.empty()) out.push_back(item);
      item.clear();
    } else if (c != ' ') {
      item.push_back(c);
    }
  }
  return out;
}

FlagInfo Describe(const CLI::Option& opt) {
  FlagInfo info;
  if (opt.get_items_expected_max() == 0) return info;  // a flag without value
  const std::string type = opt.get_type_name();
  info.choices = ChoicesOf(type);
  if (!info.choices.empty()) {
    info.kind = ValueKind::kChoices;
  } else if (type.starts_with("UINT") || type.starts_with("INT") || type.starts_with("FLOAT") ||
             type.starts_with("SIZE") || type.starts_with("BYTES")) {
    info.kind = ValueKind::kNumber;
  } else {
    info.kind = ValueKind::kText;  // paths, names, addresses: offer files
  }
  return info;
}

// Adds `app` (at `path`) and its subcommands; `inherited` are the flags of
// the commands above, which the CLI accepts after a verb too (fallthrough).
void Walk(const CLI::App& app, const std::string& path, std::set<std::string> inherited,
          Tree* tree) {
  Node& node = tree->nodes[path];
  // Options of the command itself and of its option groups (nameless
  // subcommands, e.g. the --data/--file group).
  std::vector<const CLI::Option*> options = app.get_options();
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (!sub->get_name().empty()) continue;
    for (const CLI::Option* opt : sub->get_options()) options.push_back(opt);
  }
  for (const CLI::Option* opt : options) {
    std::vector<std::string> spellings;
    for (const std::string& l : opt->get_lnames()) spellings.push_back("--" + l);
    for (const std::string& s : opt->get_snames()) spellings.push_back("-" + s);
    for (const std::string& spelling : spellings) {
      inherited.insert(spelling);
      tree->flags.try_emplace(spelling, Describe(*opt));
    }
  }
  node.flags.insert(inherited.begin(), inherited.end());
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_name().empty()) continue;  // option groups
    node.subcommands.insert(sub->get_name());
    Walk(*sub, path + " " + sub->get_name(), inherited, tree);
  }
}

// `cosmos region VERB ... --server` runs `cosmos remote region VERB`: the
// local paths also complete the remote verbs and flags.
void MergeRemoteRegion(Tree* tree, const std::string& root) {
  const std::string remote = root + " remote region";
  const std::string local = root + " region";
  std::vector<std::pair<std::string, Node>> additions;
  for (const auto& [path, node] : tree->nodes) {
    if (path.rfind(remote, 0) != 0) continue;
    additions.emplace_back(local + path.substr(remote.size()), node);
  }
  for (const auto& [path, node] : additions) {
    Node& into = tree->nodes[path];
    into.subcommands.insert(node.subcommands.begin(), node.subcommands.end());
    into.flags.insert(node.flags.begin(), node.flags.end());
  }
}

std::string Join(const std::set<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : " ") + i;
  return out;
}

std::string JoinVector(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : " ") + i;
  return out;
}

// "a|b|c" patterns of the flags of one kind (shell `case` syntax).
std::string FlagPattern(const Tree& tree, ValueKind kind) {
  std::string out;
  for (const auto& [spelling, info] : tree.flags) {
    if (info.kind == kind) out += (out.empty() ? "" : "|") + spelling;
  }
  return out;
}

// The `case "$cmd $w"` arms that descend into a subcommand.
std::string DescendPatterns(const Tree& tree) {
  std::string out;
  for (const auto& [path, node] : tree.nodes) {
    for (const auto& sub : node.subcommands) {
      out += (out.empty() ? "" : "|") + ("\"" + path + " " + sub + "\"");
    }
  }
  return out;
}

std::string BashScript(const Tree& tree, const std::string& root) {
  const std::string fn = "_" + root;
  std::string s;
  s += "# bash completion for " + root + ", generated by `" + root + " completion bash` (" +
       VersionLine(root) + ").\n";
  s += "# Load with: source <(" + root + " completion bash), or install it as\n";
  s += "# /usr/share/bash-completion/completions/" + root + ".\n";
  s += fn + "() {\n";
  s += "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"\" cmd=\"" + root + "\" w i\n";
  s += "  local subs=\"\" opts=\"\"\n";
  s += "  (( COMP_CWORD > 0 )) && prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n";
  s += "  for (( i = 1; i < COMP_CWORD; i++ )); do\n";
  s += "    w=\"${COMP_WORDS[i]}\"\n";
  s += "    case \"$cmd $w\" in\n";
  s += "      " + DescendPatterns(tree) + ") cmd=\"$cmd $w\" ;;\n";
  s += "    esac\n";
  s += "  done\n";
  s += "  case \"$prev\" in\n";
  for (const auto& [spelling, info] : tree.flags) {
    if (info.kind != ValueKind::kChoices) continue;
    s += "    " + spelling + ") COMPREPLY=($(compgen -W \"" + JoinVector(info.choices) +
         "\" -- \"$cur\")); return 0 ;;\n";
  }
  const std::string numbers = FlagPattern(tree, ValueKind::kNumber);
  if (!numbers.empty()) s += "    " + numbers + ") COMPREPLY=(); return 0 ;;\n";
  const std::string texts = FlagPattern(tree, ValueKind::kText);
  if (!texts.empty()) {
    s += "    " + texts + ") COMPREPLY=($(compgen -f -- \"$cur\")); return 0 ;;\n";
  }
  s += "  esac\n";
  s += "  case \"$cmd\" in\n";
  for (const auto& [path, node] : tree.nodes) {
    s += "    \"" + path + "\") subs=\"" + Join(node.subcommands) + "\"; opts=\"" +
         Join(node.flags) + "\" ;;\n";
  }
  s += "  esac\n";
  s += "  if [[ \"$cur\" == -* ]]; then\n";
  s += "    COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n";
  s += "  elif [[ -n \"$subs\" ]]; then\n";
  s += "    COMPREPLY=($(compgen -W \"$subs\" -- \"$cur\"))\n";
  s += "  else\n";
  s += "    COMPREPLY=($(compgen -f -- \"$cur\"))\n";
  s += "  fi\n";
  s += "  return 0\n";
  s += "}\n";
  s += "complete -o filenames -F " + fn + " " + root + "\n";
  return s;
}

std::string ZshScript(const Tree& tree, const std::string& root) {
  const std::string fn = "_" + root;
  std::string s;
  s += "#compdef " + root + "\n";
  s += "# zsh completion for " + root + ", generated by `" + root + " completion zsh` (" +
       VersionLine(root) + ").\n";
  s += "# Install as _" + root +
       " in a directory of $fpath (Debian: /usr/share/zsh/vendor-"
       "completions), or load with: source <(" +
       root + " completion zsh).\n";
  s += fn + "() {\n";
  // `path` is special in zsh (tied to $PATH): the command path is `cmd`.
  s += "  local cur=\"${words[CURRENT]}\" prev=\"${words[CURRENT-1]}\" cmd=\"" + root + "\" w i\n";
  s += "  local -a subs opts\n";
  s += "  for (( i = 2; i < CURRENT; i++ )); do\n";
  s += "    w=\"${words[i]}\"\n";
  s += "    case \"$cmd $w\" in\n";
  s += "      " + DescendPatterns(tree) + ") cmd=\"$cmd $w\" ;;\n";
  s += "    esac\n";
  s += "  done\n";
  s += "  case \"$prev\" in\n";
  for (const auto& [spelling, info] : tree.flags) {
    if (info.kind != ValueKind::kChoices) continue;
    s += "    " + spelling + ") compadd -- " + JoinVector(info.choices) + "; return ;;\n";
  }
  const std::string numbers = FlagPattern(tree, ValueKind::kNumber);
  if (!numbers.empty()) s += "    " + numbers + ") _message 'number'; return ;;\n";
  const std::string texts = FlagPattern(tree, ValueKind::kText);
  if (!texts.empty()) s += "    " + texts + ") _files; return ;;\n";
  s += "  esac\n";
  s += "  case \"$cmd\" in\n";
  for (const auto& [path, node] : tree.nodes) {
    s += "    \"" + path + "\") subs=(" + Join(node.subcommands) + "); opts=(" + Join(node.flags) +
         ") ;;\n";
  }
  s += "  esac\n";
  s += "  if [[ \"$cur\" == -* ]]; then\n";
  s += "    compadd -- $opts\n";
  s += "  elif (( ${#subs} )); then\n";
  s += "    compadd -- $subs\n";
  s += "  else\n";
  s += "    _files\n";
  s += "  fi\n";
  s += "}\n";
  s += "if [[ \"${funcstack[1]}\" == \"" + fn + "\" ]]; then\n";
  s += "  " + fn + " \"$@\"\n";
  s += "else\n";
  s += "  compdef " + fn + " " + root + "\n";
  s += "fi\n";
  return s;
}

}  // namespace

void RegisterCompletionCommand(CLI::App& app, Context& ctx) {
  CLI::App* cmd = app.add_subcommand(
      "completion", "Print a shell completion script (bash or zsh) for this command tree");
  auto shell = std::make_shared<std::string>();
  cmd->add_option("shell", *shell, "bash or zsh")
      ->check(CLI::IsMember({"bash", "zsh"}))
      ->required();
  cmd->callback([&app, &ctx, shell] {
    Tree tree;
    const std::string root = app.get_name();
    Walk(app, root, {}, &tree);
    MergeRemoteRegion(&tree, root);
    const std::string script = *shell == "bash" ? BashScript(tree, root) : ZshScript(tree, root);
    ctx.Emit(script, {{"shell", *shell}, {"script", script}});
  });
}

}  // namespace cosmos::cli
