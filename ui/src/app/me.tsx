// Who the app acts as. The engine's profile by default; in a single-user installation or for
// trying roles out, another name from the directory can be picked (kept in localStorage).
import { useQuery } from "@tanstack/react-query";
import { createContext, useContext, useMemo, useState, type ReactNode } from "react";
import { api } from "../api/client";
import type { Me } from "../api/types.gen";

const KEY = "processops.actAs";

interface MeState {
  me: Me | undefined;
  /** The name decisions and tags are recorded under. */
  name: string;
  roles: string[];
  setActAs: (name: string | null) => void;
}

const MeContext = createContext<MeState>({ me: undefined, name: "", roles: [], setActAs: () => {} });

export function MeProvider({ children }: { children: ReactNode }) {
  const query = useQuery({ queryKey: ["me"], queryFn: api.me, staleTime: 60_000 });
  const [actAs, setActAsState] = useState<string | null>(() => localStorage.getItem(KEY));
  const value = useMemo<MeState>(() => {
    const me = query.data;
    const name = actAs || me?.name || "";
    const roles = me?.users.find((u) => u.name === name)?.roles ?? me?.roles ?? [];
    return {
      me,
      name,
      roles,
      setActAs: (n) => {
        if (n) localStorage.setItem(KEY, n);
        else localStorage.removeItem(KEY);
        setActAsState(n);
      },
    };
  }, [query.data, actAs]);
  return <MeContext.Provider value={value}>{children}</MeContext.Provider>;
}

export function useMe(): MeState {
  return useContext(MeContext);
}
