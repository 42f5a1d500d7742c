#pragma once
// Per-task kept-KV budgets of the threshold-free method (DBudgetKV / ReFreeKV, arXiv 2502.16886)
// as a workload profile for the simulator. APPROXIMATE: ../shared/docs/method.md gives only each
// model's average kept budget over 13 datasets (Llama3-8B-Instruct 63.68%, Mistral-7B-Instruct
// 86.75%, Qwen2.5-7B-Instruct 76.02%), that short math prompts keep > 85%, and that QMSum keeps
// 15%. The table is built from those numbers alone (paper_budgets.cpp says how); every number
// lives there.
#include <string>
#include <string_view>
#include <vector>

namespace prunekv::sim {

struct PaperBudgetProfile {
  std::string model;                  // "llama3-8b", "mistral-7b", "qwen2.5-7b"
  double average_budget = 0;          // as reported (fraction)
  std::vector<std::string> tasks;     // 13 task labels
  std::vector<double> task_budgets;   // mean kept fraction per task; their mean = average_budget
  double within_task_spread = 0;      // requests of a task draw uniformly in budget +- spread
};

std::vector<std::string> paper_budget_models();
// Throws ConfigError for an unknown model, listing the known ones.
const PaperBudgetProfile& paper_budget_profile(std::string_view model);

}  // namespace prunekv::sim
